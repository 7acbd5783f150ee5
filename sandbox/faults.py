"""Per-prompt fault directives: deterministic misbehaviour a test can ask for.

A directive is a whitespace-separated token inside the prompt text,
``sandbox:NAME`` or ``sandbox:NAME=VALUE``. Tests put them in the prompt because
the prompt is the one thing every client forwards untouched, so a fault can be
scripted end to end without a side channel.

Outcome directives of one family (submit, fetch, download) form a script read in
prompt order: with ``sandbox:submit_429=2 sandbox:submit_500`` the first two
submits answer 429, the third 500, later ones succeed. Each entry covers the
next N requests (its count); entries without a count default to 1, except the
"permanent" ones (submit_400, submit_error, dl_403, dl_404, dl_html) which
cover every later request unless given a count.

Submit (counted per prompt text, since no task exists yet):
  submit_429[=N]          429, JSON error, header Retry-After: 1
  submit_429_noretry[=N]  429, JSON error, no Retry-After
  submit_500[=N]          500, text/html "502 Bad Gateway" page
  submit_accept_502[=N]   the task IS created (and counted), then a text/html 502 page:
                          a proxy that lost the gateway's answer
  submit_accept_drop[=N]  the task IS created (and counted), then the connection is
                          closed without an answer
  submit_accept_504[=N]   the task IS created (and counted), then a text/html 504 page
  submit_accept_4xx[=N]   the task IS created (and counted), then 400 {"code":"error",...}
  submit_accept_garbled[=N]  the task IS created (and counted), then 200 with half a JSON body
  submit_429_html[=N]     429, text/html page, Retry-After: 2 (seconds)
  submit_429_date[=N]     429, text/html page, Retry-After as an HTTP date 2 s ahead
  submit_400[=N]          400 JSON error (every submit unless N)
  submit_error=MSG        200 {"code":"error","message":MSG with _ as spaces} (every submit)
  submit_malformed[=N]    200 with the first half of a JSON body; no task is created
  submit_slow=S[:N]       the first N (default 1) submits wait S seconds, then answer
                          normally (a task IS created even if the client gave up)
  submit_trickle=MS       the task IS created (and counted), then the status line and headers
                          (with a correct Content-Length) go out at once and the body one byte
                          every MS milliseconds (every submit of the prompt)
  submit_redirect=URL     the task IS created (and counted), then 307 Temporary Redirect,
                          Location: URL (a paid POST a redirect-following client re-sends)
Fetch (counted per task):
  fetch_429[=N], fetch_500[=N] (text/html), fetch_malformed[=N] (half a JSON body),
  fetch_429_html[=N], fetch_429_date[=N]   as the submit's
  fetch_slow=S[:N]        the first N (default 1) fetches wait S seconds
  fetch_trickle=MS        every fetch answer: head at once, body one byte every MS milliseconds
  fetch_redirect=URL      every fetch of the task answers 302 Found, Location: URL (the Suno
                          batch fetch too, when it names the task)
  unknown_for=S           for S seconds after the submit every fetch answers 404
                          {"code":"error","message":"task not found"} and the batch fetch leaves
                          the task out; it generates meanwhile (its clock starts at the submit)
  expire=S                S seconds after the submit the task is forgotten for good: 404 task
                          not found to every fetch, absent from every batch answer (its files
                          stay on the CDN)
Task shape:
  status_before=NAME      before IN_PROGRESS the status reads NAME instead of SUBMITTED:
                          QUEUED, NOT_START, UNKNOWN or EMPTY (the empty string); on Suno,
                          where new-api makes UNKNOWN final, UNKNOWN is refused
  progress=MODEL          linear (default: the share of the generation time), stuck (0% until
                          done), stepwise (0/25/50/75%), none (no progress field at all)
  failure                 ends FAILURE, fail_reason "sandbox: generation failed (content policy)"
  gen_time=S, duration=S, size_mb=N (streamed MP3 of N MiB)
  reported_duration=S     the fetch answer claims S seconds; the MP3 keeps its true length
  flat                    songs directly under data (no inner data)
  stagger                 song 1 ready at 50%, song 2 at 100%
  never_finish            IN_PROGRESS forever, progress stops at 99%
  omit_running_songs      while not terminal, the songs container is left out entirely
  hostile_titles          song titles "../../etc/passwd" and "CON"
  long_titles             song titles of emoji only and of 300 CJK characters
Downloads (counted per file: song/1, song/2, cover/1, cover/2):
  dl_truncate[=N]         Content-Length sent, half the body, then FIN
  dl_reset[=N]            a quarter of the body (at most 64 KiB), then TCP RST
  dl_500[=N]              500 text/html
  dl_403[=N], dl_404[=N]  storage-style XML errors (every download unless N)
  dl_html[=N]             200 text/html error page (every download unless N)
  dl_none_mp3             song_path ends in /None.mp3 and 404s (covers still served)
  dl_fake_mp3             song files are an ID3 header over text: MP3 by their first bytes,
                          no MPEG audio inside (covers still served)
  dl_slow=KBPS            every download of the task throttled to KBPS KiB/s
  dl_redirect=URL         every download of the task's files answers 302 Found, Location: URL
Suno (sandbox/suno.py; directives in gpt_description_prompt, else tags and prompt):
  clip_array              the single fetch answers with the bare clip array (Suno-API's shape)
  batch_absent=N          the task is left out of the first N batch fetches that name it
  batch_absent_every=N    the task is left out of every Nth batch answer that names it, forever
                          (scattered omissions)
MiniMax upload: no prompt, so the global config knob upload_redirect=URL (POST /_sandbox/config)
  makes every upload answer 302 Found, Location: URL.
MiniMax generation (directives in the lyrics; see sandbox/minimax.py):
  url                     data.audio is a URL instead of hex
  minimax_error[=CODE]    base_resp.status_code CODE (default 1026)
  minimax_1002[=N]        the first N calls with these lyrics answer base_resp 1002 (rate
                          limit; nothing generated, nothing billed), then success
  minimax_1039[=N]        the same with 1039 (token rate limit)
  duration=S, gen_time=S  song length; seconds the answer takes
  submit_accept_502, submit_accept_drop   the song is generated (and counted), then the
                          answer is a 502 page, or the connection closes without one
  submit_trickle=MS, submit_redirect=URL   the song is generated (and counted), then the
                          answer trickles, or is a 307 to URL

Every endpoint refuses (401) an Authorization header without ``Bearer `` before the key.

Profiles (sandbox/profiles.py): ``--profile NAME`` or POST /_sandbox/config {"profile": NAME}
adds directives to every submit, drawn per prompt at the profile's rates from the seed.

Counters (GET /_sandbox/stats): every directive that acts is counted under its name in
``faults``, and per task in ``faults_by_task`` (per prompt in ``faults_by_prompt`` before a
task exists); the transport manners also in the totals ``trickled`` (answers whose body
trickled; ``trickle_completed`` of which were sent whole), ``redirected``,
``unknown_answered``, ``expired_answered`` and ``batch_omitted``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FOREVER = 1 << 62

# name -> (family, default count); the family decides which counter a
# directive consumes and the default count says whether it is a one-off.
OUTCOMES: dict[str, tuple[str, int]] = {
    "submit_429": ("submit", 1),
    "submit_429_noretry": ("submit", 1),
    "submit_500": ("submit", 1),
    "submit_malformed": ("submit", 1),
    "submit_accept_502": ("submit", 1),
    "submit_accept_drop": ("submit", 1),
    "submit_accept_504": ("submit", 1),
    "submit_accept_4xx": ("submit", 1),
    "submit_accept_garbled": ("submit", 1),
    "submit_429_html": ("submit", 1),
    "submit_429_date": ("submit", 1),
    "minimax_1002": ("submit", 1),
    "minimax_1039": ("submit", 1),
    "submit_400": ("submit", FOREVER),
    "submit_error": ("submit", FOREVER),
    "fetch_500": ("fetch", 1),
    "fetch_429": ("fetch", 1),
    "fetch_malformed": ("fetch", 1),
    "fetch_429_html": ("fetch", 1),
    "fetch_429_date": ("fetch", 1),
    "dl_truncate": ("download", 1),
    "dl_reset": ("download", 1),
    "dl_500": ("download", 1),
    "dl_403": ("download", FOREVER),
    "dl_404": ("download", FOREVER),
    "dl_html": ("download", FOREVER),
}

# Submit outcomes that create the task first: the upstream accepted, the answer was lost.
ACCEPTING = ("submit_accept_502", "submit_accept_drop", "submit_accept_504", "submit_accept_4xx",
             "submit_accept_garbled")

# Delays: value S or S:N (seconds, for the first N requests; N defaults to 1).
DELAYS = ("submit_slow", "fetch_slow")

# Task shape: flags take no value, the others a positive number.
FLAGS = ("failure", "flat", "stagger", "never_finish", "dl_none_mp3", "dl_fake_mp3", "omit_running_songs",
         "hostile_titles", "long_titles", "clip_array")
NUMBERS = ("gen_time", "duration", "reported_duration", "size_mb", "dl_slow", "batch_absent",
           "submit_trickle", "fetch_trickle", "unknown_for", "expire", "batch_absent_every")
POSITIVE = ("size_mb", "dl_slow", "reported_duration", "batch_absent", "submit_trickle", "fetch_trickle",
            "unknown_for", "expire", "batch_absent_every")

# Words: the value is one of a fixed set.
CHOICES: dict[str, tuple[str, ...]] = {
    "status_before": ("QUEUED", "NOT_START", "UNKNOWN", "EMPTY"),
    "progress": ("linear", "stuck", "stepwise", "none"),
}

# Redirects: the value is the Location, written literally (no spaces) in the token.
URLS = ("submit_redirect", "fetch_redirect", "dl_redirect")

# MiniMax: answer with a URL; answer a base_resp error with an optional status code.
MINIMAX_FLAGS = ("url",)
CODES = ("minimax_error",)

KNOWN = set(OUTCOMES) | set(DELAYS) | set(FLAGS) | set(NUMBERS) | set(MINIMAX_FLAGS) | set(CODES) | set(URLS) | set(CHOICES)

_TOKEN = re.compile(r"sandbox:([A-Za-z0-9_]+)(?:=(\S*))?")


class DirectiveError(ValueError):
    """A prompt carried a sandbox directive that is unknown or malformed."""


@dataclass(frozen=True)
class Directive:
    name: str
    value: str | None


@dataclass(frozen=True)
class Directives:
    items: tuple[Directive, ...] = ()

    def has(self, name: str) -> bool:
        return any(d.name == name for d in self.items)

    def number(self, name: str) -> float | None:
        for d in self.items:
            if d.name == name and d.value is not None:
                return float(d.value)
        return None

    def text(self, name: str) -> str | None:
        for d in self.items:
            if d.name == name and d.value is not None:
                return d.value
        return None

    def delay(self, name: str, k: int) -> float:
        """Seconds to wait before answering the k-th (0-based) request."""
        for d in self.items:
            if d.name == name and d.value is not None:
                seconds, _, count = d.value.partition(":")
                if k < (int(count) if count else 1):
                    return float(seconds)
        return 0.0

    def outcome(self, family: str, k: int) -> Directive | None:
        """The outcome directive covering the k-th (0-based) request of a family."""
        for d in self.items:
            spec = OUTCOMES.get(d.name)
            if spec is None or spec[0] != family:
                continue
            count = spec[1]
            if d.value is not None and d.name != "submit_error":
                count = int(d.value)
            if k < count:
                return d
            k -= count
        return None


def parse_directives(prompt: str) -> Directives:
    """Read every ``sandbox:`` token of a prompt; refuse unknown or bad ones.

    Refusing (rather than ignoring) a typo makes a fault test fail loudly at
    submit instead of silently testing the happy path.
    """
    items: list[Directive] = []
    for token in prompt.split():
        if not token.startswith("sandbox:"):
            continue
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise DirectiveError(f"malformed sandbox directive {token!r}")
        name, value = match.group(1), match.group(2)
        if name not in KNOWN:
            raise DirectiveError(f"unknown sandbox directive {name!r}; known: {sorted(KNOWN)}")
        _check_value(name, value)
        items.append(Directive(name, value))
    return Directives(tuple(items))


def _check_value(name: str, value: str | None) -> None:
    try:
        if name in FLAGS or name in MINIMAX_FLAGS:
            if value is not None:
                raise DirectiveError(f"sandbox:{name} takes no value")
        elif name in CODES:
            if value is not None and int(value) <= 0:
                raise DirectiveError(f"sandbox:{name}=CODE needs a positive status code")
        elif name in CHOICES:
            if value not in CHOICES[name]:
                raise DirectiveError(f"sandbox:{name} must be one of {list(CHOICES[name])}")
        elif name in URLS:
            if not value or not value.startswith(("http://", "https://")):
                raise DirectiveError(f"sandbox:{name} needs a URL: {name}=http://HOST/PATH")
        elif name == "submit_error":
            if not value:
                raise DirectiveError("sandbox:submit_error needs a message: submit_error=MSG_WORDS")
        elif name in OUTCOMES:
            if value is not None and int(value) < 0:
                raise DirectiveError(f"sandbox:{name}=N needs N >= 0")
        elif name in DELAYS:
            if value is None:
                raise DirectiveError(f"sandbox:{name} needs a value: {name}=SECONDS[:COUNT]")
            seconds, _, count = value.partition(":")
            if float(seconds) < 0 or (count and int(count) < 0):
                raise DirectiveError(f"sandbox:{name} needs non-negative numbers")
        elif name in NUMBERS:
            if value is None:
                raise DirectiveError(f"sandbox:{name} needs a value: {name}=NUMBER")
            number = float(value)
            if name == "gen_time" and number < 0:
                raise DirectiveError("sandbox:gen_time must be >= 0")
            if name == "duration" and not 0.1 <= number <= 3600:
                raise DirectiveError("sandbox:duration must be between 0.1 and 3600")
            if name in POSITIVE and number <= 0:
                raise DirectiveError(f"sandbox:{name} must be > 0")
            if name == "batch_absent_every" and number != int(number):
                raise DirectiveError("sandbox:batch_absent_every must be a whole number")
    except ValueError as exc:
        if isinstance(exc, DirectiveError):
            raise
        raise DirectiveError(f"sandbox:{name}={value} has a bad number") from None
