"""A task id the gateway gave us that it then does not know: counted, not believed at once.

Relays that write a task after answering its submit, or read from a lagging replica,
answer 404 "task not found" to the first fetches, or leave the task out of a batch answer;
a flaky relay leaves a running task out now and then. So such an answer (Udio and Suno
alike) counts only once SONGQUEUE_UNKNOWN_TASK_GRACE has passed since the submit, and only
in a row: any answered poll starts the count again (`forget`, called when an answer is
merged). Past more than SONGQUEUE_UNKNOWN_TASK_POLLS (Suno: SUNO_MAX_ABSENCES) the job
ends `upstream_task_missing`, saying what was seen and over how long.

The count lives on the job record (`attempts`), so it survives the worker and is fenced
like every other write of the poll.
"""

from __future__ import annotations

import time

from producer.core.models.job_record import WAITING_STATES, JobRecord, JobState
from producer.core.provider_settings import BatchPolledProviderSettings
from workers import metrics, runtime
from workers.steps.common import end_job, log

# attempts keys: unknown answers in a row, and when the first of them came (seconds after the submit).
IN_A_ROW = "unknown"
FIRST_AT = "unknown_first_s"
# What a batch answer that leaves the task out says.
LEFT_OUT = "left out of a batch answer"


def limit(record: JobRecord) -> int:
    settings = runtime.settings()
    own = settings.provider(record.provider)
    return own.max_absences if isinstance(own, BatchPolledProviderSettings) else settings.unknown_task_polls


def forget(record: JobRecord) -> None:
    """An answered poll: the unknown answers so far were not in a row with any later one."""
    record.attempts.pop(IN_A_ROW, None)
    record.attempts.pop(FIRST_AT, None)


def seen(record: JobRecord, token: int, what: str) -> float | None:
    """One answer that did not know the job's task (`what` it said). The countdown to the
    next poll, or None when the job's polling is over (ended here, or moved on)."""
    settings = runtime.settings()
    submitted = record.submitted_at or record.created_at
    since_submit = time.time() - submitted
    _, least, _ = settings.poll_schedule(record.provider)
    if since_submit < settings.unknown_task_grace:
        counted = 0  # the relay may not have written the task yet
    else:
        counted = record.attempts.get(IN_A_ROW, 0) + 1
    first = record.attempts.get(FIRST_AT, int(since_submit)) if counted > 1 else int(since_submit)
    bound = limit(record)
    if counted > bound:
        message = (f"the upstream does not know task {record.upstream_task_id}: it answered {what} to {counted} "
                   f"polls in a row over {since_submit - first:.0f} s, the first {first} s after the submit it "
                   f"accepted (SONGQUEUE_UNKNOWN_TASK_GRACE={settings.unknown_task_grace:g} s)")
        ended = end_job(record.id, JobState.FAILED, "upstream_task_missing", message, expect=WAITING_STATES)
        if ended is not None:  # its fetches counted, as poll_apply.polling_ended does (which imports this)
            metrics.polls_per_job(ended.provider, ended.attempts.get("poll", 0) + 1)
        return None

    def note(r: JobRecord) -> None:
        if counted:
            r.attempts[IN_A_ROW] = counted
            r.attempts[FIRST_AT] = first
        r.attempts["poll"] = r.attempts.get("poll", 0) + 1

    if runtime.store().apply(record.id, WAITING_STATES, mutate=note, token=token,
                             check_in=least + settings.watchdog_grace) is None:
        return None
    if counted:
        log.info("job %s: task %s unknown to the upstream (%s), %d in a row of %d allowed", record.id,
                 record.upstream_task_id, what, counted, bound)
    else:
        log.info("job %s: task %s unknown to the upstream (%s) %.0f s after its submit, within the grace window",
                 record.id, record.upstream_task_id, what, since_submit)
    return least
