"""Playlist definitions: TOML files in SONGQUEUE_PLAYLISTS_DIR, validated into pydantic models.

One file is one playlist: when it runs (`cron` in `timezone`, or `every` for tests), what
each run asks for (`provider`, `model`, `request` defaults, `prompts` expanded per song
request), where the run's playlist files go (`storage_prefix`) and how many requests must
succeed (`min_success`). The format is documented in docs/playlists.md and
in playlists/example.toml.sample.

The producer owns these models: the CLI validates a file before anything is enqueued, the
beat reads the folder to schedule, and the run task reads it again to start a run. A bad
file is refused with its path and the offending key (`DefinitionError`) and never stops
the other files of the folder from loading.
"""

from __future__ import annotations

import math
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from producer.core import deadlines
from producer.core.callbacks import check_events
from producer.core.models.providers import DEFAULT_PROVIDER, PROVIDERS, provider_spec
from producer.core.models.validation_errors import Wording, field_errors
from producer.core.playlists.problems import (
    JOINED,
    PLACEHOLDERS,
    DefinitionError,
    all_problems,
    request_problems,
    template_problem,
)
from producer.core.playlists.schedule import Cron, Every, Timing, parse_duration

__all__ = ["PLACEHOLDERS", "DefinitionError", "PlaylistDefinition", "load_definition", "load_folder", "parse_definition"]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# Storage keys are ours, plain ASCII, never escaping their root (workers.artifacts.manifest check_key).
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*\Z")
MAX_REQUESTS = 200
# A definition file names its parts "keys"; an error about the file as a whole is "(file)".
_FILE_WORDING = Wording(unknown="unknown key", missing="required", whole="(file)", named_by_model_only=True)
# Stands in for a run's time when a file is validated without running it.
_SAMPLE_TIME = datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC)


class PlaylistDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="lower-case letters, digits, - and _; defaults to the file name")
    cron: str | None = Field(None, description="minute hour day-of-month month day-of-week, in `timezone`")
    every: str | int | None = Field(None, description='a fixed period such as "5s": meant for tests')
    timezone: str = "UTC"
    provider: str = DEFAULT_PROVIDER
    model: str | None = None
    prompts: list[str] = Field(min_length=1)
    count: int | None = Field(None, ge=1, le=MAX_REQUESTS, description="song requests per run; default len(prompts)")
    min_success: int | str = Field(1, description='requests that must succeed: a number or a percentage "75%"')
    storage_prefix: str | None = None
    album: str | None = Field(None, min_length=1, max_length=200)
    timeout: str | int = Field("6h", description="a run still open this long after it started ends with what it has")
    deadline: str | int | None = Field(None, description="each job's deadline from the run's start, a duration such "
                                       "as \"2h\": not submitted by then, CANCELLED uncharged; submitted, TIMED_OUT")
    callback_url: str | None = Field(None, description="each job's callback_url (docs/callbacks-and-hooks.md)")
    callback_events: list[str] | None = Field(None, description="with callback_url: only these events")
    request: dict[str, Any] = Field(default_factory=dict)

    _source: str = PrivateAttr("")

    @field_validator("prompts", mode="before")
    @classmethod
    def _one_prompt_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Berlin or UTC)") from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is not None:
            Cron.parse(value, ZoneInfo("UTC"))
        return value

    @field_validator("deadline")
    @classmethod
    def _deadline(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            deadlines.seconds_from(value)
        return value

    @field_validator("callback_events")
    @classmethod
    def _known_events(cls, value: list[str] | None) -> list[str] | None:
        try:
            return check_events(value)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("callback_events: ")) from None

    @model_validator(mode="after")
    def _events_need_a_url(self) -> PlaylistDefinition:
        if self.callback_events is not None and self.callback_url is None:
            raise ValueError("callback_events: needs a callback_url")
        return self

    @field_validator("every", "timeout")
    @classmethod
    def _duration(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in PROVIDERS:
            raise ValueError(f"must be one of {', '.join(sorted(PROVIDERS))}, got {value!r}")
        return value

    @field_validator("storage_prefix")
    @classmethod
    def _safe_prefix(cls, value: str | None) -> str | None:
        if value is not None and (not _PREFIX.match(value) or ".." in value.split("/")):
            raise ValueError("ASCII letters, digits, '.', '_', '-' in '/'-separated parts, no '..', "
                             f"no leading or trailing '/': got {value!r}")
        return value

    @field_validator("min_success")
    @classmethod
    def _min_success_form(cls, value: int | str) -> int | str:
        if isinstance(value, bool):
            raise ValueError("a number of requests or a percentage such as \"75%\"")
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", value)
            if not match or float(match.group(1)) > 100:
                raise ValueError(f"a number of requests or a percentage from 0% to 100%, got {value!r}")
        elif value < 0:
            raise ValueError("must be >= 0")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> PlaylistDefinition:
        # "key: rule" messages, every one found (JOINED): the model-level errors name their
        # key (see _FILE_WORDING), and a file's author sees them all in one go.
        problems = []
        if self.cron is not None and self.every is not None:
            problems.append("every: give either cron or every, not both")
        if isinstance(self.min_success, int) and self.min_success > self.requests_per_run:
            problems.append(f"min_success: {self.min_success} is more than the {self.requests_per_run} "
                            "requests of a run")
        usable = []  # the prompts the sample run below can fill in ("sample" for a broken one)
        for i, template in enumerate(self.prompts):
            problem = template_problem(template)
            if problem:
                problems.append(f"prompts[{i}]: {problem}")
            usable.append("sample" if problem else template)
        spec = provider_spec(self.provider)
        text, model = spec.text_field, spec.model_field
        for key in (text, model):
            if key in self.request:
                owner = "prompts" if key == text else "model"
                problems.append(f"request.{key}: set by `{owner}`, not in [request]")
        try:  # every request model rule, on a sample run
            self.model_copy(update={"prompts": usable}).expand(_SAMPLE_TIME)
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError(JOINED.join(problems))
        return self

    # --- what a run needs -------------------------------------------------------------

    @property
    def source(self) -> str:
        """The file this definition was read from ("" when built in code)."""
        return self._source

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def timing(self) -> Timing | None:
        """None: a playlist without a schedule runs only by `songqueue playlist run`."""
        if self.cron is not None:
            return Cron.parse(self.cron, self.zone)
        if self.every is not None:
            return Every(parse_duration(self.every), self.zone)
        return None

    @property
    def warnings(self) -> list[str]:
        """What is valid but likely not meant (a cron restricting both day fields)."""
        timing = self.timing
        warning = timing.both_days_warning() if isinstance(timing, Cron) else None
        return [warning] if warning else []

    @property
    def requests_per_run(self) -> int:
        return self.count or len(self.prompts)

    @property
    def min_success_requests(self) -> int:
        if isinstance(self.min_success, int):
            return self.min_success
        percent = float(self.min_success.strip().rstrip("%"))
        return math.ceil(self.requests_per_run * percent / 100 - 1e-9)

    @property
    def prefix(self) -> str:
        return self.storage_prefix or f"playlists/{self.name}"

    @property
    def album_name(self) -> str:
        return self.album or self.name

    @property
    def timeout_seconds(self) -> int:
        return parse_duration(self.timeout)

    def expand(self, at: datetime) -> list[dict[str, Any]]:
        """The run's requests at time `at` (its slot), each validated with the provider's model.

        Request i (from 1) uses prompts[(i - 1) % len(prompts)] with its placeholders
        filled. Raises ValueError("KEY: rule") naming the definition's key.
        """
        local = at.astimezone(self.zone)
        spec = provider_spec(self.provider)
        text, model_key = spec.text_field, spec.model_field
        requests = []
        for i in range(1, self.requests_per_run + 1):
            slot = (i - 1) % len(self.prompts)
            values = {"date": local.strftime("%Y-%m-%d"), "time": local.strftime("%H:%M"),
                      "datetime": local.isoformat(timespec="seconds"), "index": i,
                      "count": self.requests_per_run, "name": self.name}
            data = {**self.request, text: self.prompts[slot].format(**values)}
            if self.model is not None:
                data[model_key] = self.model
            try:
                spec.request_model.model_validate(data)
            except pydantic.ValidationError as exc:
                raise ValueError(JOINED.join(request_problems(exc, spec.request_model, slot, text, model_key))) from None
            requests.append(data)
        return requests


def parse_definition(data: dict[str, Any], path: Path | str) -> PlaylistDefinition:
    """Validate a parsed TOML table; the name defaults to the file's stem."""
    path = Path(path)
    data = {"name": path.name.removesuffix(".toml"), **data}
    definition, problems = all_problems(PlaylistDefinition.model_validate,
                                        lambda exc: field_errors(exc, _FILE_WORDING), data,
                                        PlaylistDefinition.model_fields)
    if problems:
        raise DefinitionError(path, problems)
    definition._source = str(path)  # noqa: SLF001 - set once, by the loader that knows the file
    return definition


def load_definition(path: Path | str) -> PlaylistDefinition:
    """Read and validate one playlist file; raises DefinitionError naming path and key."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise DefinitionError(path, [("(file)", f"cannot read: {exc.strerror or exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(path, [("(TOML syntax)", str(exc))]) from None
    return parse_definition(data, path)


def load_folder(folder: Path | str) -> tuple[dict[str, PlaylistDefinition], list[DefinitionError]]:
    """Every `*.toml` in `folder` (sorted by file name): the good ones by name, and the errors.

    A missing folder holds no playlists. Of two files with one name, the first one wins
    and the second is an error naming the first.
    """
    folder = Path(folder)
    found: dict[str, PlaylistDefinition] = {}
    errors: list[DefinitionError] = []
    if not folder.is_dir():
        return found, errors
    for path in sorted(folder.glob("*.toml")):
        try:
            definition = load_definition(path)
        except DefinitionError as exc:
            errors.append(exc)
            continue
        if definition.name in found:
            errors.append(DefinitionError(path, [("name", f"{definition.name!r} is already defined in "
                                                          f"{found[definition.name].source}")]))
            continue
        found[definition.name] = definition
    return found, errors
