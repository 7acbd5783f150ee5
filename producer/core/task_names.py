"""Task and queue names: the wire contract between producer and workers.

The producer sends tasks by name (`Celery.send_task`) so a backend service needs only this
package and a broker URL, never the worker code.
"""

SUBMIT = "songqueue.submit"
POLL = "songqueue.poll"
# One per batch-polled provider: fetches every due job's task in one call (docs/providers.md).
POLL_DRAIN = "songqueue.poll_drain"
DOWNLOAD = "songqueue.download"
FINALIZE = "songqueue.finalize"
# Scheduled playlists (producer/playlist_*.py, workers/tasks/playlist.py).
PLAYLIST_RUN = "songqueue.playlist_run"
PLAYLIST_CHECK = "songqueue.playlist_check"
PLAYLIST_SWEEP = "songqueue.playlist_sweep"
# Delivers a job's signed status to its callback_url; on a queue of its own so a slow
# receiver never holds up a download.
CALLBACK = "songqueue.callback"
# Retention (producer/core/store/retention.py): the manifest of a job that ended without
# succeeding, and the periodic sweep of expired jobs' and runs' index entries.
ARCHIVE = "songqueue.archive"
RETENTION_SWEEP = "songqueue.retention_sweep"

QUEUE_SUBMIT = "submit"
QUEUE_POLL = "poll"
QUEUE_DOWNLOAD = "download"
QUEUE_CALLBACK = "callback"
ALL_QUEUES = (QUEUE_SUBMIT, QUEUE_POLL, QUEUE_DOWNLOAD, QUEUE_CALLBACK)

ROUTES = {
    SUBMIT: {"queue": QUEUE_SUBMIT},
    POLL: {"queue": QUEUE_POLL},
    POLL_DRAIN: {"queue": QUEUE_POLL},
    DOWNLOAD: {"queue": QUEUE_DOWNLOAD},
    FINALIZE: {"queue": QUEUE_DOWNLOAD},
    PLAYLIST_RUN: {"queue": QUEUE_SUBMIT},
    PLAYLIST_CHECK: {"queue": QUEUE_POLL},
    PLAYLIST_SWEEP: {"queue": QUEUE_POLL},
    CALLBACK: {"queue": QUEUE_CALLBACK},
    ARCHIVE: {"queue": QUEUE_DOWNLOAD},
    RETENTION_SWEEP: {"queue": QUEUE_POLL},
}


def argsrepr(job_id: str, *args: object, provider: str = "", request: dict | None = None) -> str:
    """What Flower shows as a task's arguments: the job id, its provider and the first words
    of its prompt (lyrics for MiniMax), then the step's own arguments. Never a secret: a
    request holds none, and API keys never reach a task message."""
    text = f"job={job_id}"
    if provider:
        text += f" provider={provider}"
    if request:
        words = str(request.get("prompt") or request.get("lyrics") or "")[:40]
        text += f" prompt={words!r}"
    return text + "".join(f" {a}" for a in args)
