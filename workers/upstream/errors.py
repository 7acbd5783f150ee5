"""How an upstream call can fail, sorted by what the caller should do about it."""

from __future__ import annotations


class UpstreamError(Exception):
    """`code` is machine-readable; str(exc) is a sentence fit for a job's error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TransientError(UpstreamError):
    """Worth trying again later: timeouts, connection errors, 429, 5xx.

    `maybe_accepted` marks a submit whose request may have reached the upstream (a read
    timeout, a garbled 200): retrying it could bill twice.
    """

    def __init__(
        self, code: str, message: str, retry_after: float | None = None, maybe_accepted: bool = False
    ) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after
        self.maybe_accepted = maybe_accepted


class PermanentError(UpstreamError):
    """Trying again cannot help: 4xx, FAILURE, an answer we refuse to use."""
