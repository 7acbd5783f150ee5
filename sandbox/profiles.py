"""Named profiles: every manner of the world mixed at a rate, as data.

A profile is a table of manners. Each manner is a set of directives (sandbox/faults.py)
added to a submit with its rate, for the providers it applies to; manners of one group
exclude each other (a task has one progress model, one early status, one submit outcome).
The draw is made per prompt from ``(seed, prompt)``, not from arrival order, so a run with
the same seed and prompts meets the same world however its workers interleave, and a
resubmit of a prompt meets the manners its first submit met. Knobs (``batch_id_cap``) are
config values the profile sets when chosen.

``GET /_sandbox/stats`` lists each prompt's draw under ``profile_draws``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

UDIO, SUNO, MINIMAX = "udio", "suno", "minimax"
ASYNC = (UDIO, SUNO)
ALL = (UDIO, SUNO, MINIMAX)
PRIVATE = "http://127.0.0.2:9/moved"  # a private address no client may follow to
ELSEWHERE = "http://files.elsewhere.invalid/moved"  # another host, which does not even resolve


@dataclass(frozen=True)
class Manner:
    name: str
    rate: float
    directives: str
    group: str
    providers: tuple[str, ...] = ASYNC


@dataclass(frozen=True)
class Profile:
    name: str
    manners: tuple[Manner, ...]
    knobs: tuple[tuple[str, object], ...] = ()

    def draw(self, seed: int | None, provider: str, prompt: str) -> tuple[Manner, ...]:
        """The manners ``prompt`` meets: at most one of each group, each at its rate."""
        rng = random.Random(f"{seed}:{provider}:{prompt}")
        chosen: list[Manner] = []
        groups = dict.fromkeys(m.group for m in self.manners)
        for group in groups:
            roll, edge = rng.random(), 0.0
            for manner in self.manners:
                if manner.group != group or provider not in manner.providers:
                    continue
                edge += manner.rate
                if roll < edge:
                    chosen.append(manner)
                    break
        return tuple(chosen)


REALISTIC = Profile("realistic", (
    # The generation itself fails now and then (content policy).
    Manner("failure", 0.05, "sandbox:failure", "outcome"),
    # Statuses before IN_PROGRESS (UNKNOWN is final on Suno's new-api, so Udio only).
    Manner("status_queued", 0.15, "sandbox:status_before=QUEUED", "status"),
    Manner("status_not_start", 0.10, "sandbox:status_before=NOT_START", "status"),
    Manner("status_unknown", 0.05, "sandbox:status_before=UNKNOWN", "status", (UDIO,)),
    Manner("status_empty", 0.05, "sandbox:status_before=EMPTY", "status"),
    # Progress models (linear otherwise).
    Manner("progress_stuck", 0.15, "sandbox:progress=stuck", "progress"),
    Manner("progress_stepwise", 0.15, "sandbox:progress=stepwise", "progress"),
    Manner("progress_none", 0.10, "sandbox:progress=none", "progress"),
    # The task's record: written late, or forgotten a while after the finish.
    Manner("unknown_for", 0.15, "sandbox:unknown_for=4", "record"),
    Manner("expire", 0.05, "sandbox:expire=60", "record"),
    # The submit's answer.
    Manner("submit_429_html", 0.06, "sandbox:submit_429_html", "submit"),
    Manner("submit_429_date", 0.06, "sandbox:submit_429_date", "submit"),
    Manner("submit_accept_504", 0.03, "sandbox:submit_accept_504", "submit"),
    Manner("submit_accept_4xx", 0.02, "sandbox:submit_accept_4xx", "submit"),
    Manner("submit_accept_garbled", 0.02, "sandbox:submit_accept_garbled", "submit"),
    Manner("submit_accept_502", 0.02, "sandbox:submit_accept_502", "submit"),
    Manner("submit_accept_drop", 0.02, "sandbox:submit_accept_drop", "submit"),
    Manner("submit_trickle", 0.04, "sandbox:submit_trickle=50", "submit"),
    Manner("submit_redirect_private", 0.01, f"sandbox:submit_redirect={PRIVATE}", "submit"),
    # MiniMax's answer: rate limits that pass on the next try, lost answers of a billed call.
    Manner("minimax_1002", 0.15, "sandbox:minimax_1002", "submit", (MINIMAX,)),
    Manner("minimax_1039", 0.05, "sandbox:minimax_1039", "submit", (MINIMAX,)),
    Manner("minimax_accept_502", 0.03, "sandbox:submit_accept_502", "submit", (MINIMAX,)),
    Manner("minimax_accept_drop", 0.02, "sandbox:submit_accept_drop", "submit", (MINIMAX,)),
    # The fetches' answers.
    Manner("fetch_429_html", 0.05, "sandbox:fetch_429_html", "fetch"),
    Manner("fetch_429_date", 0.05, "sandbox:fetch_429_date", "fetch"),
    Manner("fetch_trickle", 0.05, "sandbox:fetch_trickle=1", "fetch"),
    Manner("batch_absent_every", 0.10, "sandbox:batch_absent_every=4", "batch", (SUNO,)),
    # The files.
    Manner("dl_redirect_elsewhere", 0.02, f"sandbox:dl_redirect={ELSEWHERE}", "download"),
), knobs=(("batch_id_cap", 50),))

PROFILES = {p.name: p for p in (REALISTIC,)}
