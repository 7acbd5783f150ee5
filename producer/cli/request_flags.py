"""`songqueue submit`'s request flags: one per request field, how they become a request, and
how a request's validation errors are told back by flag.

Which flag belongs to which provider is read from the provider specs (a flag is refused
when the chosen provider's request model has no field for it). What each provider's flags
mean beyond a plain field (udio's `config`, minimax's reference uploads) is said here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pydantic
from pydantic.fields import FieldInfo

from producer.cli.exit_codes import BadInput
from producer.cli.parser_base import whole_number
from producer.client.minimax_upload import Purpose
from producer.client.songqueue import JobNotFound, SongQueue
from producer.core.models.providers import PROVIDERS, ProviderSpec, provider_spec
from producer.core.models.udio import UdioConfig, UdioRequest
from producer.core.models.validation_errors import field_errors

# gen_params fields that get a flag of their own; `config` is spelled --mode/--extend/--context-length.
_FLAG_ALIASES = {"model_type": "--model"}
# Fields of other providers' models that the flags above already fill.
_SPELLED_OTHERWISE = {"mv", "model", "continue_clip_id", "refer_voice", "refer_instrumental",
                      "audio_setting"}  # audio_setting: an object, from the Python API only
# Fields of providers other than udio that get a flag of their own (suno's), in model order.
_OTHER_FIELDS = tuple(dict.fromkeys(
    name for spec in PROVIDERS.values() if spec.request_model is not UdioRequest
    for name in spec.request_model.model_fields
    if name not in UdioRequest.model_fields and name not in _SPELLED_OTHERWISE and name != spec.lyrics_field))
_SKIP_FIELDS = {"config", "prompt", "lyrics"}
# argparse hands over strings: pydantic turns "0.5" into a float field, but never into a
# Literal of numbers, so generation_quality is converted here.
_FLAG_TYPES: dict[str, Callable[[str], Any]] = {"generation_quality": float}
_EXTRA_FLAGS = {"song_section_start": ("--section-start",)}
# Flags that fill the request's `config` rather than a field of their own name.
_CONFIG_FLAGS = ("mode", "extend", "extend_job", "song", "context_length")
# (request field, upload purpose) of each reference, given as an id or a file.
_REFERENCES: tuple[tuple[str, Purpose], ...] = (("refer_voice", "voice"), ("refer_instrumental", "instrumental"))
# Flags only some providers take, in the order they are checked.
_PROVIDER_FLAGS = ("prompt", *_CONFIG_FLAGS, *_OTHER_FIELDS,
                   *(name for name in UdioRequest.model_fields if name not in _SKIP_FIELDS | {"model_type"}),
                   *(name for field, _ in _REFERENCES for name in (field, field + "_file")))
# Stands in for an id still to be uploaded while every other rule is checked.
_PENDING_UPLOAD = "pending-upload"

Uploads = dict[str, tuple[Path, Purpose]]


def add_request_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", help="udio (required): description (generate/instrumental) or style tags (user); "
                        + field_help(UdioRequest.model_fields["prompt"]))
    lyrics = parser.add_mutually_exclusive_group()
    lyrics.add_argument("--lyrics", help="lyrics text; " + field_help(UdioRequest.model_fields["lyrics"]))
    lyrics.add_argument("--lyrics-file", type=Path, help="read the lyrics from a UTF-8 file")
    for name, info in UdioRequest.model_fields.items():
        if name in _SKIP_FIELDS:
            continue
        flags = (flag(name), *_EXTRA_FLAGS.get(name, ()))
        if info.annotation is bool:
            parser.add_argument(*flags, dest=name, action="store_const", const=True, default=None)
        else:
            parser.add_argument(*flags, dest=name, default=None, type=_FLAG_TYPES.get(name, str), metavar=name.upper(),
                                help=field_help(info) + (_other_models() if name == "model_type" else ""))
    for name in _OTHER_FIELDS:
        info = next(spec.request_model.model_fields[name] for spec in PROVIDERS.values() if spec.owns(name))
        owners = "/".join(spec.name for spec in PROVIDERS.values() if spec.owns(name))
        if info.annotation in (bool, bool | None):
            parser.add_argument(flag(name), dest=name, action="store_const", const=True, default=None,
                                help=_owned(owners, field_help(info)))
        else:
            parser.add_argument(flag(name), dest=name, default=None, metavar=name.upper(),
                                help=_owned(owners, field_help(info)))
    parser.add_argument("--mode", choices=["regular", "precede", "continuation"], default=None,
                        help="config.mode; precede/continuation extend the song given by --extend or --extend-job")
    extend = parser.add_mutually_exclusive_group()
    extend.add_argument("--extend", metavar="SONG_ID", help="the upstream id of the song to extend "
                        "(udio: config.source.song_id; suno: continue_clip_id)")
    extend.add_argument("--extend-job", metavar="JOB_ID", help="extend a song of an earlier job (see --song)")
    parser.add_argument("--song", type=whole_number(1), metavar="N",
                        help="with --extend-job: which of its songs, from 1 (default 1)")
    parser.add_argument("--context-length", default=None,
                        help="config.context_length, seconds; " + field_help(UdioConfig.model_fields["context_length"]))
    for field, purpose in _REFERENCES:
        group = parser.add_mutually_exclusive_group()
        group.add_argument(flag(field), dest=field, metavar="ID", help=f"minimax: {field}, an id from the upload API")
        group.add_argument(flag(field) + "-file", dest=field + "_file", type=Path, metavar="PATH",
                           help=f"minimax: upload this audio file (purpose {purpose}) and use its id as {field}")


def field_help(info: FieldInfo) -> str:
    """A request field's rule as help text: its description, choices, range and default."""
    parts = [info.description] if info.description else []
    if get_origin(info.annotation) is Literal:
        parts.append("choices: " + ", ".join(str(c) for c in get_args(info.annotation)))
    for rule in info.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"),
                           ("min_length", "length >="), ("max_length", "length <=")):
            if getattr(rule, attr, None) is not None:
                parts.append(f"{sign} {getattr(rule, attr)}")
    if not info.is_required() and info.default is not None and not (info.default is False and info.annotation is bool):
        # None and an unset boolean flag are "not sent", nothing a reader needs told.
        parts.append(f"default {info.default!r}")
    return "; ".join(parts)


def _owned(owners: str, text: str) -> str:
    """A flag's help prefixed by the providers that take it ("minimax", "minimax: music-1.5+: ...")."""
    return f"{owners}: {text}" if text else f"{owners} only"


def _other_models() -> str:
    """The --model help's note on the providers whose model field is not udio's: each one's
    models, its default first."""
    others = (spec for spec in PROVIDERS.values() if spec.request_model is not UdioRequest)
    return "".join(f"; {spec.name}: {', '.join(_models(spec))}" for spec in others)


def _models(spec: ProviderSpec) -> list[str]:
    """Every model the provider's request accepts, its default first."""
    field = spec.request_model.model_fields[spec.model_field]
    names = [str(m) for m in get_args(field.annotation)] if get_origin(field.annotation) is Literal else []
    return [spec.default_model] + [m for m in names if m != spec.default_model]


def flag(name: str) -> str:
    return _FLAG_ALIASES.get(name, "--" + name.replace("_", "-"))


def _field_of(dest: str, spec: ProviderSpec) -> str:
    """The request field the flag stored at `dest` fills for provider `spec`."""
    if dest in ("extend", "extend_job", "song") and spec.extend_field:
        return spec.extend_field
    if dest == "prompt" and spec.lyrics_field == "prompt":
        return "prompt"
    return "config" if dest in _CONFIG_FLAGS else dest.removesuffix("_file")


def refuse_flags_of_other_providers(args: argparse.Namespace) -> None:
    """A flag the chosen provider would ignore is a mistake: say so rather than drop it."""
    spec = provider_spec(args.provider)
    for name in _PROVIDER_FLAGS:
        if getattr(args, name, None) is not None and not spec.owns(_field_of(name, spec)):
            shown = flag(name.removesuffix("_file")) + "-file" if name.endswith("_file") else flag(name)
            raise BadInput(f"{shown}: not a flag of --provider {args.provider}")
    if args.song is not None and args.extend_job is None:
        raise BadInput("--song: only with --extend-job")


def _lyrics(args: argparse.Namespace) -> str | None:
    if args.lyrics_file is None:
        return args.lyrics
    try:
        return args.lyrics_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--lyrics-file: cannot read {args.lyrics_file}: {exc}") from exc


@dataclass(frozen=True)
class SongToExtend:
    song_id: str
    task_id: str | None
    duration: float | None


def song_to_extend(queue: SongQueue, job_id: str, n: int) -> SongToExtend:
    """Song `n` (from 1) of an earlier job, looked up in its record."""
    try:
        record = queue.status(job_id)
    except JobNotFound:
        raise BadInput(f"--extend-job: no job {job_id}") from None
    if provider_spec(record.provider).extend_field is None:
        extendable = " or ".join(spec.name for spec in PROVIDERS.values() if spec.extend_field)
        raise BadInput(f"--extend-job: job {job_id} is a {record.provider} job; only {extendable} songs can be extended")
    if not record.songs:
        raise BadInput(f"--extend-job: job {job_id} has no songs ({record.state.value})")
    if not 1 <= n <= len(record.songs):
        raise BadInput(f"--song: job {job_id} has {len(record.songs)} song(s): N must be 1..{len(record.songs)}, got {n}")
    song = record.songs[n - 1]
    if not song.finished:
        raise BadInput(f"--song: song {n} of job {job_id} is not finished yet ({record.state.value})")
    return SongToExtend(song.upstream_id, record.upstream_task_id, song.duration)


def _extend_clip(data: dict[str, Any], args: argparse.Namespace, source: SongToExtend | None) -> None:
    """continue_clip_id and task_id from --extend/--extend-job; continue_at from the flag, else
    the end of the clip being extended."""
    if args.extend:
        data["continue_clip_id"] = args.extend
    elif source is not None:
        data["continue_clip_id"] = source.song_id
        if source.task_id and "task_id" not in data:
            data["task_id"] = source.task_id
        if "continue_at" not in data and source.duration is not None:
            data["continue_at"] = source.duration


def reference_request(args: argparse.Namespace, spec: ProviderSpec) -> tuple[dict[str, Any], Uploads]:
    """A request that refers to uploaded audio (minimax): its fields and the files still to
    upload, every rule checked with a stand-in for each id to come."""
    data: dict[str, Any] = {}
    lyrics = _lyrics(args)
    if lyrics is not None:
        data[spec.text_field] = lyrics
    if args.model_type is not None:
        data[spec.model_field] = args.model_type
    for name in ("prompt", *_OTHER_FIELDS):  # the current MiniMax models' prompt, is_instrumental, ...
        if spec.owns(name) and getattr(args, name, None) is not None:
            data[name] = getattr(args, name)
    uploads: Uploads = {}
    for field, purpose in _REFERENCES:
        if getattr(args, field) is not None:
            data[field] = getattr(args, field)
        path = getattr(args, field + "_file")
        if path is not None:
            _check_readable(path, flag(field) + "-file")
            uploads[field] = (path, purpose)
    spec.request_model.model_validate({**data, **{field: _PENDING_UPLOAD for field in uploads}})
    return data, uploads


def _check_readable(path: Path, shown: str) -> None:
    try:
        with path.open("rb") as f:
            if not f.read(1):
                raise BadInput(f"{shown}: {path} is empty")
    except OSError as exc:
        raise BadInput(f"{shown}: cannot read {path}: {exc.strerror or exc}") from exc


def prompt_request(args: argparse.Namespace, spec: ProviderSpec,
                   source: SongToExtend | None = None) -> dict[str, Any]:
    """A request described by a prompt (udio, suno), extending song `source` when given."""
    data: dict[str, Any] = {}
    lyrics = _lyrics(args)
    if spec.lyrics_field == "prompt":  # suno: custom mode's lyrics are its `prompt`
        if args.prompt is not None and lyrics is not None:
            raise BadInput(f"--lyrics: --provider {spec.name} takes the lyrics as --lyrics or --prompt, not both")
        lyrics = args.prompt if lyrics is None else lyrics
    else:
        text = getattr(args, spec.text_field)
        if text is None:
            raise BadInput(f"{flag(spec.text_field)}: required with --provider {spec.name}")
        data[spec.text_field] = text
    if lyrics is not None:
        data[spec.lyrics_field] = lyrics
    for name in spec.request_model.model_fields:
        if name not in _SKIP_FIELDS and getattr(args, name, None) is not None:
            data[name] = getattr(args, name)
    if args.model_type is not None:
        data[spec.model_field] = args.model_type
    if spec.extend_field != "config":
        if spec.extend_field:
            _extend_clip(data, args, source)
        return data
    config: dict[str, Any] = {}
    song_id = args.extend or (source.song_id if source else None)
    if song_id:
        config["mode"] = args.mode or "continuation"
        config["source"] = {"source_type": "song", "song_id": song_id}
    elif args.mode:
        config["mode"] = args.mode
    if args.context_length is not None:
        config["context_length"] = args.context_length
    if config:
        data["config"] = config
    return data


def takes_references(spec: ProviderSpec) -> bool:
    return any(spec.owns(field) for field, _ in _REFERENCES)


# Parts of udio's `config` are set by flags of other names.
_CONFIG_LOCATIONS = {"config": "--mode", "config.mode": "--mode", "config.context_length": "--context-length",
                 "config.source": "--extend/--extend-job", "song_id": "--extend", "config.source.song_id": "--extend"}


def flag_of(location: str) -> str:
    if location in _CONFIG_LOCATIONS:
        return _CONFIG_LOCATIONS[location]
    if location == "request" or "." in location:
        return location
    return flag(location)


def describe_flags(exc: pydantic.ValidationError) -> str:
    """One line per error: `  --seed '-2': Input should be greater than or equal to -1`."""
    lines = []
    for (location, rule), error in zip(field_errors(exc), exc.errors(include_url=False), strict=True):
        given = error.get("input")
        own = ".".join(str(part) for part in error["loc"]) == location
        echo = f" {given!r}" if own and isinstance(given, str | int | float) and len(str(given)) <= 80 else ""
        lines.append(f"  {flag_of(location)}{echo}: {rule}")
    return "\n".join(lines)
