"""The exit codes of every `songqueue` command, and the error that means exit 2.

0 done, 1 job failed (or cancelled; a playlist run FAILED), 2 bad input, 3 timeout,
4 songqueue itself unreachable (Redis or the broker down), 141 the reader of the output
went away (`songqueue list | head`), as for any program killed by SIGPIPE.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_TIMEOUT = 3
EXIT_UNAVAILABLE = 4
EXIT_BROKEN_PIPE = 141


class BadInput(Exception):
    """A flag or value the command refuses; `main` prints it and exits EXIT_BAD_INPUT."""
