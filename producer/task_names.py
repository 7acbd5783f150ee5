"""Task and queue names: the wire contract between producer and workers.

The producer sends tasks by name (`Celery.send_task`) so a backend service needs only this
package and a broker URL, never the worker code.
"""

SUBMIT = "songqueue.submit"
POLL = "songqueue.poll"
DOWNLOAD = "songqueue.download"
FINALIZE = "songqueue.finalize"
WATCHDOG = "songqueue.watchdog"

QUEUE_SUBMIT = "submit"
QUEUE_POLL = "poll"
QUEUE_DOWNLOAD = "download"
ALL_QUEUES = (QUEUE_SUBMIT, QUEUE_POLL, QUEUE_DOWNLOAD)

ROUTES = {
    SUBMIT: {"queue": QUEUE_SUBMIT},
    POLL: {"queue": QUEUE_POLL},
    DOWNLOAD: {"queue": QUEUE_DOWNLOAD},
    FINALIZE: {"queue": QUEUE_DOWNLOAD},
    WATCHDOG: {"queue": QUEUE_POLL},
}
