"""The job state machine as data: every move a job's state may make, and the step that makes it.

`EDGES` is the one table of allowed transitions, read off the code's real writes (every
`JobStore.apply(..., to=...)` and every `end_job`); the job store refuses any other move
(`check`, raising `IllegalTransition` before anything is written). A write that keeps the
state (no `to=`, or `to=` the state it is in) is not a transition and is always allowed.

The state diagram in docs/architecture.md ("How a job flows") is rendered from the table
(`mermaid`); `python -m producer.core.models.job_states` rewrites it, and a test fails
while the page and the table disagree.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from producer.core.models.job_record import TERMINAL_STATES, JobState

QUEUED, SUBMITTING, SUBMITTED, GENERATING, DOWNLOADING = (
    JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.GENERATING, JobState.DOWNLOADING)
SUCCEEDED, FAILED, TIMED_OUT, CANCELLED = JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED


@dataclass(frozen=True)
class Edge:
    """One allowed move of a job's state, and the step that makes it. (Not
    `job_record.Transition`: that is a move a job made, stamped on its record.)"""

    source: JobState
    target: JobState
    step: str


EDGES: tuple[Edge, ...] = (
    # producer/core/enqueue.py: the submit task could not be sent (enqueue_failed).
    Edge(QUEUED, FAILED, "enqueue"),
    # workers/tasks/submit.py: the intent before the paid call, its answer after it.
    Edge(QUEUED, SUBMITTING, "submit"),
    Edge(SUBMITTING, SUBMITTED, "submit"),  # an asynchronous provider's task id (workers/steps/paid.py)
    Edge(SUBMITTING, DOWNLOADING, "submit"),  # a synchronous provider's songs (workers/steps/paid.py)
    Edge(SUBMITTING, QUEUED, "submit"),  # a transient fault nothing upstream accepted: admitted again later
    Edge(QUEUED, FAILED, "submit"),  # submit attempts exhausted, over budget, a retry past its bound
    Edge(QUEUED, CANCELLED, "submit"),  # the caller's deadline passed first (producer/core/deadlines.py)
    Edge(SUBMITTING, FAILED, "submit"),  # refused, uncertain (workers/steps/uncertain.py), no songs
    # workers/tasks/poll.py, workers/steps/poll_apply.py and poll_batch.py.
    Edge(SUBMITTED, GENERATING, "poll"),
    Edge(SUBMITTED, DOWNLOADING, "poll"),
    Edge(GENERATING, DOWNLOADING, "poll"),
    Edge(SUBMITTED, FAILED, "poll"),
    Edge(GENERATING, FAILED, "poll"),
    Edge(DOWNLOADING, FAILED, "poll"),  # SUCCESS without any songs
    Edge(SUBMITTED, TIMED_OUT, "poll"),  # past the job's deadline
    Edge(GENERATING, TIMED_OUT, "poll"),
    # workers/tasks/watchdog.py: past the caller's deadline, whatever its messages are doing.
    Edge(QUEUED, CANCELLED, "watchdog"),
    Edge(SUBMITTED, TIMED_OUT, "watchdog"),
    Edge(GENERATING, TIMED_OUT, "watchdog"),
    # workers/tasks/download.py: a song downloads while its sibling still generates.
    Edge(GENERATING, FAILED, "download"),
    Edge(DOWNLOADING, FAILED, "download"),
    # workers/steps/finalize.py.
    Edge(DOWNLOADING, SUCCEEDED, "finalize"),
    Edge(DOWNLOADING, FAILED, "finalize"),
    # producer/core/enqueue.py (`songqueue cancel`, a playlist's cancel): any live job.
    *(Edge(state, CANCELLED, "cancel") for state in (QUEUED, SUBMITTING, SUBMITTED, GENERATING, DOWNLOADING)),
    # producer/client/songqueue.py (`songqueue retry`): an ended job runs again.
    Edge(FAILED, QUEUED, "retry"),
    Edge(TIMED_OUT, QUEUED, "retry"),
)

ALLOWED: frozenset[tuple[JobState, JobState]] = frozenset((e.source, e.target) for e in EDGES)


class IllegalTransition(ValueError):
    """A write would move a job along an edge `EDGES` does not hold; nothing was written."""

    def __init__(self, job_id: str, source: JobState, target: JobState) -> None:
        super().__init__(f"job {job_id}: {source.value} -> {target.value} is not an allowed transition")
        self.job_id = job_id
        self.source = source
        self.target = target


def check(job_id: str, source: JobState, target: JobState) -> None:
    """Raise IllegalTransition unless `source` -> `target` is allowed (or keeps the state)."""
    if source != target and (source, target) not in ALLOWED:
        raise IllegalTransition(job_id, source, target)


def path(source: JobState, target: JobState) -> list[JobState]:
    """The states after `source` on a shortest allowed way to `target` (for tests and tools
    that need a job in a given state); [] when `source` is `target`."""
    came: dict[JobState, JobState] = {}
    todo = deque([source])
    while todo:
        state = todo.popleft()
        if state == target:
            way = []
            while state != source:
                way.append(state)
                state = came[state]
            return way[::-1]
        for edge in EDGES:
            if edge.source == state and edge.target not in came and edge.target != source:
                came[edge.target] = state
                todo.append(edge.target)
    raise ValueError(f"no allowed way from {source.value} to {target.value}")


def mermaid() -> str:
    """The table as a mermaid stateDiagram-v2 block, each edge labelled with its steps."""
    steps: dict[tuple[JobState, JobState], list[str]] = {}
    for edge in EDGES:
        named = steps.setdefault((edge.source, edge.target), [])
        if edge.step not in named:
            named.append(edge.step)
    lines = ["```mermaid", "stateDiagram-v2", f"    [*] --> {QUEUED.value}"]
    lines += [f"    {a.value} --> {b.value}: {', '.join(names)}" for (a, b), names in steps.items()]
    lines += [f"    {s.value} --> [*]" for s in JobState if s in TERMINAL_STATES]
    lines.append("```")
    return "\n".join(lines)


BEGIN, END = "<!-- states:begin -->", "<!-- states:end -->"
PAGE = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"


def render_page(text: str) -> str:
    """`text` (docs/architecture.md) with the block between the markers rendered afresh."""
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"the page has no {BEGIN} ... {END} block")
    return f"{head}{BEGIN}\n{mermaid()}\n{END}{tail}"


def main() -> int:
    """Rewrite the diagram in docs/architecture.md from the table."""
    text = PAGE.read_text()
    rendered = render_page(text)
    if rendered != text:
        PAGE.write_text(rendered)
        print(f"{PAGE}: state diagram rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
