"""A paid call is charged once under its intent's id (workers/steps/ledger.py)."""

from __future__ import annotations

from producer.core.models.job_record import JobRecord
from workers.steps import ledger


def _record(**fields: object) -> JobRecord:
    return JobRecord(id="j1", provider="udio", model="udio32", request={"prompt": "p"}, **fields)


def test_the_same_call_is_charged_once_whoever_charges_it() -> None:
    record = _record(submit_intent_id="a1")
    assert ledger.charge_current(record, 0.25)  # the end of an uncertain submit
    assert not ledger.charge(record, "a1", 0.25)  # the late answer of that very call
    assert record.cost == 0.25 and record.charged_calls == ["a1"]


def test_each_call_is_charged() -> None:
    record = _record()
    assert ledger.charge(record, "a1", 0.25) and ledger.charge(record, "b2", 0.25)
    assert record.cost == 0.5 and record.charged_calls == ["a1", "b2"]


def test_a_free_call_lists_nothing_and_an_intent_without_id_is_charged_as_before() -> None:
    record = _record()
    assert not ledger.charge(record, "a1", 0.0)
    assert record.charged_calls == []  # a price given later (a hook's reconcile) still counts
    assert ledger.charge_current(record, 0.25) and ledger.charge_current(record, 0.25)
    assert record.cost == 0.5


def test_intent_ids_differ() -> None:
    assert len({ledger.new_intent() for _ in range(100)}) == 100
