"""How an upstream call can fail, sorted by what the caller should do about it."""

from __future__ import annotations


class UpstreamError(Exception):
    """`code` is machine-readable; str(exc) is a sentence fit for a job's error.


    `maybe_accepted` marks an answer to a paid call that may have been acted upon and
    billed (see TransientError, and PermanentError for a billed but unusable answer).
    """

    def __init__(self, code: str, message: str, maybe_accepted: bool = False, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.maybe_accepted = maybe_accepted
        # The HTTP status of the answer that said so, when it was an error status (a 404
        # on a fetch is a task the gateway does not know: workers/steps/unknown_task.py).
        self.http_status = http_status


class TransientError(UpstreamError):
    """Worth trying again later: timeouts, connection errors, 429, 5xx.

    `maybe_accepted` marks a submit whose request may have reached the upstream (a read
    timeout, a garbled 200): retrying it could bill twice.
    """

    def __init__(
        self, code: str, message: str, retry_after: float | None = None, maybe_accepted: bool = False
    ) -> None:
        super().__init__(code, message, maybe_accepted)
        self.retry_after = retry_after


class PermanentError(UpstreamError):
    """Trying again cannot help: 4xx, FAILURE, an answer we refuse to use.

    With `maybe_accepted` the call succeeded upstream (and was billed) but its answer is
    unusable: a MiniMax success without audio, an oversized 200.
    """


class TaskUnknown(UpstreamError):
    """The gateway does not know a task id it gave us (404 "task not found", left out of a
    batch answer). Not a verdict: relays write a task after answering its submit, or read
    from a lagging replica, so it counts only past a grace window and in a row
    (workers/steps/unknown_task.py)."""

    def __init__(self, seen: str) -> None:
        super().__init__("upstream_task_unknown", f"the upstream does not know the task ({seen})")
        self.seen = seen
