"""The learned poll schedule (workers/poll_schedule.py): pure, so tested without Redis."""

from __future__ import annotations

import pytest

from producer.core.store.poll_history import History
from workers.poll_schedule import (
    LADDER,
    Learned,
    finish_estimate,
    learn,
    next_poll_delay,
    predicted_finish,
    progress_error,
)
from workers.retry_policy import next_poll_delay as old_rule

MIN, MAX = 2.0, 60.0
NARROW = History(tuple(54.0 + 12.0 * i / 99 for i in range(100)), ())


def test_without_history_it_is_the_old_rule() -> None:
    assert learn(History((60.0,) * 19, ()), min_jobs=20) is None
    for elapsed, progress in [(5.0, 0), (20.0, 25), (90.0, 90)]:
        assert next_poll_delay(elapsed, progress, "IN_PROGRESS", MIN, MAX, None) == old_rule(elapsed, progress, MIN, MAX)


def test_quantiles_of_the_history() -> None:
    learned = learn(NARROW, min_jobs=20)
    assert learned is not None
    assert len(learned.finish_at) == len(LADDER)
    assert learned.finish_at[0] == pytest.approx(57.0)  # 25th percentile
    assert learned.finish_at[1] == pytest.approx(60.0)
    assert list(learned.finish_at) == sorted(learned.finish_at)


def test_with_history_it_aims_at_the_next_quantile_not_yet_passed() -> None:
    learned = learn(NARROW, min_jobs=20)
    # Nothing finishes before 54 s: no poll is spent before the 25th percentile (57 s).
    assert next_poll_delay(0.0, 0, "", MIN, MAX, learned) == pytest.approx(57.0)
    assert next_poll_delay(55.2, 0, "IN_PROGRESS", MIN, MAX, learned) == MIN  # 57 s, 1.8 s on: at least MIN
    assert next_poll_delay(57.0, 0, "IN_PROGRESS", MIN, MAX, learned) == pytest.approx(3.0)
    # The old rule would wait half the elapsed time, far past every finish seen.
    assert old_rule(57.0, 0, MIN, MAX) == pytest.approx(28.5)


def test_learned_waits_stay_within_the_bounds() -> None:
    learned = learn(NARROW, min_jobs=20)
    assert next_poll_delay(0.0, 0, "QUEUED", MIN, 30.0, learned) == 30.0
    assert next_poll_delay(58.5, 0, "IN_PROGRESS", MIN, MAX, learned) == MIN  # 60 s is 1.5 s on
    assert next_poll_delay(59.5, 0, "IN_PROGRESS", MIN, MAX, learned) == pytest.approx(3.5)  # at 60 s already: 63 s
    # Past the last quantile: half the spread between the median and the 99th percentile
    # (65.88 - 60) / 2, where the old rule would wait 40 s.
    assert next_poll_delay(80.0, 0, "IN_PROGRESS", MIN, MAX, learned) == pytest.approx(2.94)
    assert old_rule(80.0, 0, MIN, MAX) == pytest.approx(40.0)


def test_progress_is_used_only_where_it_proved_informative() -> None:
    durations = NARROW.durations
    good = learn(History(durations, (0.05,) * 10), min_jobs=20)
    bad = learn(History(durations, (0.6,) * 10), min_jobs=20)
    too_few = learn(History(durations, (0.05,) * 9), min_jobs=20)
    assert good is not None and good.progress_informative
    assert bad is not None and not bad.progress_informative
    assert too_few is not None and not too_few.progress_informative
    # 90 % at 50 s: 5.6 s to go, aimed at 0.9 of it (5 s), before the next quantile (57 s).
    assert next_poll_delay(50.0, 90, "IN_PROGRESS", MIN, MAX, good) == pytest.approx(5.0)
    assert next_poll_delay(50.0, 90, "IN_PROGRESS", MIN, MAX, bad) == pytest.approx(7.0)
    # Progress never pushes a poll past a quantile: 50 % at 40 s says 36 s, the history 17 s.
    assert next_poll_delay(40.0, 50, "IN_PROGRESS", MIN, MAX, good) == pytest.approx(57.0 - 40.0)
    # A status that says "not started" has no progress to go on, even on an informative provider.
    assert next_poll_delay(50.0, 90, "QUEUED", MIN, MAX, good) == pytest.approx(7.0)


def test_prediction_and_its_error() -> None:
    assert predicted_finish(130.0, 100.0, 25) == pytest.approx(220.0)
    assert predicted_finish(130.0, 100.0, 0) is None
    assert predicted_finish(130.0, 100.0, 100) is None
    assert progress_error(220.0, 100.0, 200.0) == pytest.approx(0.2)
    assert progress_error(None, 100.0, 200.0) is None


def test_learned_is_plain_data() -> None:
    assert Learned((1.0,), False) == Learned((1.0,), False)


def test_the_first_poll_is_not_held_to_the_minimum_interval(monkeypatch) -> None:
    """A model whose jobs finish at once is looked at at once: the minimum interval spaces polls
    of one task, and the first poll has none before it (the pipeline benchmark fell from 38 to
    8 jobs/s when each first look waited the 2 s minimum)."""
    from producer.core.settings import Settings
    from workers import poll_learning

    quick = learn(History((0.05,) * 30, ()), min_jobs=20)
    monkeypatch.setattr(poll_learning, "learned", lambda provider, model: quick)
    settings = Settings(poll_min_interval=2.0, poll_initial_delay=5.0)
    assert poll_learning.first_poll(settings, "udio", "udio32-v1.5") < 0.5


def test_the_finish_is_the_gap_s_midpoint_narrowed_by_the_upstream_s_own_stamps() -> None:
    # Seen running at 100 s, done at 160 s (submitted at 0): the midpoint, 130 s, may be 30 s off.
    assert finish_estimate(100.0, 160.0, 0.0, None) == 130.0
    # The upstream says it took 141 s (whole seconds, each stamp cut down): within 140-142 s.
    assert finish_estimate(100.0, 160.0, 0.0, 141.0) == 141.0
    # Near the gap's edge only the part inside the gap counts.
    assert finish_estimate(100.0, 160.0, 0.0, 159.5) == pytest.approx((158.5 + 160.0) / 2)
    # Stamps the polls contradict (finished before it was seen running, or after it was seen
    # done) are not believed: a relay's queue counted apart, a clock running at another rate.
    assert finish_estimate(100.0, 160.0, 0.0, 40.0) == 130.0
    assert finish_estimate(100.0, 160.0, 0.0, 400.0) == 130.0
