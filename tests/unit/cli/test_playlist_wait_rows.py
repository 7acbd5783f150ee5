"""`playlist run --wait` prints a row per job as it ends, above a progress bar that stays at the bottom."""

from __future__ import annotations

import io

from producer.cli.playlist import ended_rows
from producer.cli.progress import ProgressDisplay
from producer.core.models.job_record import JobError, JobRecord, JobState


def _job(job_id: str, state: JobState, error: JobError | None = None) -> JobRecord:
    return JobRecord(id=job_id, provider="udio", model="udio32-v1.5", request={}, state=state, error=error)


def test_each_ended_job_gets_one_row_once() -> None:
    reported: set[str] = set()
    running = [_job("a", JobState.GENERATING), _job("b", JobState.QUEUED)]
    assert ended_rows(running, reported) == []
    first = [_job("a", JobState.SUCCEEDED), _job("b", JobState.GENERATING)]
    assert ended_rows(first, reported) == ["  job 1/2 a: SUCCEEDED"]
    both = [_job("a", JobState.SUCCEEDED),
            _job("b", JobState.FAILED, JobError(code="upstream_failure", message="bad \x1b[31mred\x1b[0m day"))]
    assert ended_rows(both, reported) == ["  job 2/2 b: FAILED upstream_failure: bad red day"]
    assert ended_rows(both, reported) == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_row_is_printed_above_the_bar_which_is_redrawn() -> None:
    screen = _Terminal()
    display = ProgressDisplay(screen)
    display.show("1/2 ended", 50)
    display.note("  job 1/2 a: SUCCEEDED")
    written = screen.getvalue()
    row_at = written.index("  job 1/2 a: SUCCEEDED\n")
    assert written.rindex("1/2 ended") > row_at, "the bar is drawn again below the row"


def test_without_a_terminal_rows_are_plain_lines() -> None:
    out = io.StringIO()
    ProgressDisplay(out).note("  job 1/1 a: SUCCEEDED")
    assert out.getvalue() == "  job 1/1 a: SUCCEEDED\n"
