"""The per-job invariants every fault row checks, whatever its fault.

A row is only as good as what it looks at: counting end states cannot see a job that was
paid twice, charged wrong, stored without a checksum, never announced, or left behind in
an index. `check` looks at all of it, from the sandbox's own counts, the spend ledger, the
files in storage, the callback receiver and every Redis index, and returns one sentence
per broken invariant (empty when all hold).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import redis

from producer.core.models.job_record import IN_FLIGHT_STATES, JobRecord, JobState, StoredObject
from producer.core.store import keys, metric_schema, spend
from workers.providers import registry


@dataclass
class Ledger:
    """What the paid calls of a row add up to, three ways."""

    ledger: float  # the spend ledger in Redis (what the budget guard reserved), all days
    metric: float  # the exporter's spend counter, kept with each cost change
    costs: float  # the sum of the jobs' `cost`
    billed: float  # the sandbox's paid calls for these jobs x their price
    most: float  # what the jobs may cost at most: calls of unknown outcome charged on doubt


@dataclass
class Findings:
    billed: dict[str, int]  # job id -> paid calls the sandbox took for it
    submitted_twice: int = 0
    paid_but_forgotten: int = 0
    broken: list[str] = field(default_factory=list)
    ledger: Ledger | None = None


def billed_calls(stats: dict[str, Any], table: str, texts: dict[str, str]) -> dict[str, int]:
    """job id -> the paid calls the sandbox counted for the job's (unique) text."""
    counted = stats.get(table, {})
    return {job_id: int(counted.get(text.strip(), 0)) for job_id, text in texts.items()}


def check(client: redis.Redis, prefix: str, settings: Any, records: list[JobRecord], texts: dict[str, str],
          stats: dict[str, Any], billed_table: str, callbacks: list[dict[str, Any]], *,
          resubmit: bool = False) -> Findings:
    """Every invariant for every job of a row; `texts` maps job id -> the text the sandbox keyed it by.

    `resubmit`: the row runs SONGQUEUE_UNCERTAIN_SUBMIT=resubmit (a second paid call is
    allowed).

    Costs equal the billed calls x price, except where a submit's outcome was unknown to
    songqueue (a worker killed mid-call, a 5xx, a lost answer): such a call is charged on
    doubt, so a job may cost more than the upstream billed, up to one price per run that
    reached the paid call (`attempts["submit"]`), never less than billed.
    """
    found = Findings(billed=billed_calls(stats, billed_table, texts))
    for record in records:
        problems = _job(client, prefix, settings, record, found.billed[record.id], callbacks, resubmit=resubmit)
        found.broken += [f"{record.id} ({record.state.value}): {p}" for p in problems]
        found.submitted_twice += found.billed[record.id] > 1
        found.paid_but_forgotten += _forgotten(settings, record, found.billed[record.id])
    found.ledger = _ledger(client, prefix, settings, records, found.billed)
    found.broken += _ledger_problems(found.ledger)
    return found


def price(settings: Any, record: JobRecord) -> float:
    return registry.call_price(settings, registry.build(record.provider, settings), record.model)


def uncertain(record: JobRecord, billed: int) -> bool:
    """Songqueue could not know whether a run of this job's submit was billed."""
    return (record.error is not None and record.error.code == "submit_uncertain") or \
        record.attempts.get("submit", 0) > billed


def cost_bounds(settings: Any, record: JobRecord, billed: int) -> tuple[float, float]:
    each = price(settings, record)
    return billed * each, (max(billed, record.attempts.get("submit", 0)) if uncertain(record, billed) else billed) * each


def _forgotten(settings: Any, record: JobRecord, billed: int) -> bool:
    """Paid upstream, and neither charged for it nor able to say where the paid work is: the job
    ended without its task id and without telling an operator the submit is uncertain."""
    if billed == 0:
        return False
    undercharged = record.cost + 1e-9 < billed * price(settings, record)
    known = (record.upstream_task_id is not None or record.state == JobState.SUCCEEDED
             or (record.error is not None and record.error.code == "submit_uncertain"))
    return undercharged or not known


def _job(client: redis.Redis, prefix: str, settings: Any, record: JobRecord, billed: int,
         callbacks: list[dict[str, Any]], *, resubmit: bool) -> list[str]:
    problems: list[str] = []
    if not record.state.terminal:
        problems.append("not terminal within the row's recovery bound")
    if billed > 1 and not resubmit:
        problems.append(f"the upstream took {billed} paid submits")
    low, high = cost_bounds(settings, record, billed)
    if not low - 1e-6 <= record.cost <= high + 1e-6:
        problems.append(f"cost {record.cost:g} but the upstream billed {billed} call(s) = {low:g}"
                        + (f" (at most {high:g} on doubt)" if high > low else ""))
    problems += _objects(record, Path(urlparse(settings.storage_url).path))
    if record.callback_url and record.state.terminal and not any(
            c.get("id") == record.id and c.get("state") == record.state.value and c.get("event") != "job.progress"
            for c in callbacks):
        problems.append("the callback receiver never got its terminal event")
    problems += _indexes(client, prefix, record)
    return problems


def _objects(record: JobRecord, root: Path) -> list[str]:
    """Every stored object of the job has a sha256 that matches its bytes, and every file in
    the job's folder is one of them (staged upstream audio aside: a copy on its way in)."""
    problems: list[str] = []
    named: dict[Path, StoredObject] = {}
    for song in record.songs:
        named.update({_path(o): o for o in (song.audio, song.cover) if o is not None})
    if record.manifest is not None:
        named[_path(record.manifest)] = record.manifest
    staged = {root / s.staged_audio_key for s in record.songs if s.staged_audio_key}
    for path, obj in named.items():
        if not obj.sha256:
            problems.append(f"stored object {obj.key} has no sha256")
        elif not path.is_file():
            problems.append(f"stored object {obj.key} is not in storage")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != obj.sha256:
            problems.append(f"stored object {obj.key}: its bytes do not match its sha256")
    folder = root / "jobs" / record.id
    if folder.is_dir():
        for path in folder.rglob("*"):
            if path.is_file() and path not in named and path not in staged:
                problems.append(f"{path.relative_to(root)} is stored without a sha256 on the record")
    if record.state == JobState.SUCCEEDED and (record.stored_assets() != record.expected_assets()
                                               or record.manifest is None or not record.songs):
        problems.append("SUCCEEDED without every asset and the manifest")
    return problems


def _path(obj: StoredObject) -> Path:
    return Path(unquote(urlparse(obj.uri).path))


def _indexes(client: redis.Redis, prefix: str, record: JobRecord) -> list[str]:
    """Every Redis index agrees with the record."""
    problems: list[str] = []
    for state in JobState:
        listed = client.zscore(keys.jobs_in_state(prefix, state.value), record.id) is not None
        if listed != (state == record.state):
            problems.append(f"state index {state.value} {'lists' if listed else 'lacks'} it")
    if client.zscore(keys.all_jobs(prefix), record.id) is None:
        problems.append("missing from the index of all jobs")
    live = not record.state.terminal
    if (client.zscore(keys.due(prefix), record.id) is not None) != live:
        problems.append(f"the watchdog's due set {'lacks' if live else 'still lists'} it")
    in_flight = client.zscore(keys.in_flight(prefix, record.provider), record.id) is not None
    if in_flight != (record.state in IN_FLIGHT_STATES):
        problems.append(f"the in-flight index {'lists' if in_flight else 'lacks'} it")
    if record.state.terminal and client.zscore(keys.poll_due(prefix, record.provider), record.id) is not None:
        problems.append("the batch-poll due set still lists it")
    if record.state.terminal and client.zscore(keys.callback_outbox(prefix), record.id) is not None:
        problems.append("its callback is still owed in the outbox")
    return problems


def _ledger(client: redis.Redis, prefix: str, settings: Any, records: list[JobRecord],
            billed: dict[str, int]) -> Ledger:
    providers = {r.provider for r in records}
    reserved = 0
    for provider in providers:
        for key in client.scan_iter(match=keys.spend(prefix, provider, "*")):
            reserved += int(client.get(key) or 0)
    metric = client.hgetall(keys.metric(prefix, metric_schema.SPEND))
    counted = sum(float(v) for k, v in metric.items() if k.decode() in providers)
    return Ledger(ledger=reserved / spend.MICROS, metric=counted, costs=sum(r.cost for r in records),
                  billed=sum(billed[r.id] * price(settings, r) for r in records),
                  most=sum(cost_bounds(settings, r, billed[r.id])[1] for r in records))


def _ledger_problems(ledger: Ledger) -> list[str]:
    problems = []
    if abs(ledger.ledger - ledger.costs) > 1e-6:
        problems.append(f"spend ledger {ledger.ledger:g} != sum of job costs {ledger.costs:g}")
    if abs(ledger.metric - ledger.costs) > 1e-6:
        problems.append(f"spend metric {ledger.metric:g} != sum of job costs {ledger.costs:g}")
    if not ledger.billed - 1e-6 <= ledger.costs <= ledger.most + 1e-6:
        problems.append(f"sum of job costs {ledger.costs:g} != billed calls x price {ledger.billed:g}"
                        + (f" (at most {ledger.most:g} on doubt)" if ledger.most > ledger.billed else ""))
    return problems
