"""`submit --wait` / `wait`: after a few seconds in QUEUED, say so when no worker takes submits."""

from __future__ import annotations

import sys
import time

from producer.cli.progress import ProgressDisplay
from producer.client.songqueue import SongQueue
from producer.core.broker import consumers
from producer.core.models.job_record import JobRecord, JobState
from producer.core.task_names import QUEUE_SUBMIT

# Long enough that a running worker has normally picked the job up; asking costs a second.
HINT_AFTER = 3.0


class NoWorkerHint:
    def __init__(self, queue: SongQueue, display: ProgressDisplay) -> None:
        self.queue = queue
        self.display = display
        self.started = time.monotonic()
        self.asked = False

    def update(self, record: JobRecord) -> None:
        self.display.update(record)
        if self.asked or record.state != JobState.QUEUED or time.monotonic() - self.started < HINT_AFTER:
            return
        self.asked = True
        answered, by_queue = consumers(self.queue.celery)
        if not by_queue[QUEUE_SUBMIT]:
            self.display.close()
            print(f"songqueue: hint: no worker consumes the {QUEUE_SUBMIT!r} queue ({answered} workers answered), "
                  "so this job waits; start one with `make worker` (or `celery -A workers.celery_app worker "
                  "-Q submit,poll,download,callback`), then `songqueue doctor` to check the rest", file=sys.stderr)
