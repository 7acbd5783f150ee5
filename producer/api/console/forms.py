"""The console's submit form, generated from each provider's request model.

One input per field of the model's JSON schema, and one per field of a nested object
(MiniMax's `audio_setting`, Udio's `config`), named `parent.child`: a choice list for an
enum, a checkbox for a bool, a number box with the model's bounds, a text box (a text area
for long text). Labels are the fields' titles, the help under each is its description with
its range and default. What the form sends back becomes the API's submit body: a field left
at "default" (an empty box, an unticked checkbox, the "default" choice) is left out, so the
model's own default applies and a rule such as "only for music-2.6" is not tripped by a
value the caller never chose. The models do the checking; their errors go back next to the
field they name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from producer.core.models.providers import PROVIDERS


@dataclass
class Input:
    name: str  # "prompt", or "audio_setting.bitrate" inside a nested object
    label: str
    kind: str  # select, checkbox, number, text, textarea
    required: bool
    default: Any = None
    choices: list[Any] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    step: str = "any"
    help: str = ""

    @property
    def blank_choice(self) -> bool:
        """A select that starts at "default" (nothing sent): an optional field without a
        default of its own, or a field of a nested object (sent only when chosen)."""
        return self.kind == "select" and (self.default is None or "." in self.name)


def _help(prop: dict[str, Any]) -> str:
    parts = [prop["description"]] if prop.get("description") else []
    low = prop.get("minimum", prop.get("exclusiveMinimum"))
    high = prop.get("maximum", prop.get("exclusiveMaximum"))
    if low is not None and high is not None:
        parts.append(f"from {low:g} to {high:g}")
    if "maxLength" in prop:
        parts.append(f"at most {prop['maxLength']} characters")
    if prop.get("default") not in (None, "") and not isinstance(prop.get("default"), bool):
        parts.append(f"default {prop['default']}")
    return "; ".join(parts)


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    options = prop.get("anyOf")
    if options:  # "X or null": the X part, optional
        prop = {**next(o for o in options if o.get("type") != "null"), **{k: v for k, v in prop.items() if k != "anyOf"}}
    if "$ref" in prop:
        prop = {**defs[prop["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop


def _input(name: str, prop: dict[str, Any], required: bool) -> Input:
    base = Input(name, prop.get("title", name), "text", required, prop.get("default"), help=_help(prop))
    if "enum" in prop or "const" in prop:
        base.kind, base.choices = "select", prop.get("enum", [prop.get("const")])
    elif prop.get("type") == "boolean":
        base.kind = "checkbox"
    elif prop.get("type") in ("integer", "number"):
        base.kind, base.minimum, base.maximum = "number", prop.get("minimum"), prop.get("maximum")
        base.step = "1" if prop["type"] == "integer" else "any"
    elif prop.get("maxLength", 20000) > 500:
        base.kind = "textarea"
    return base


def _inputs(schema: dict[str, Any]) -> list[Input]:
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    out = []
    for name, raw in schema["properties"].items():
        prop = _resolve(raw, defs)
        if prop.get("type") != "object":
            out.append(_input(name, prop, name in required))
            continue
        title = raw.get("title") or name.replace("_", " ").capitalize()  # the field's, not its class's
        for child, raw_child in prop.get("properties", {}).items():
            sub = _resolve(raw_child, defs)
            if sub.get("type") == "object" or "const" in sub:
                continue  # a deeper object (Udio's config.source) keeps its default
            made = _input(f"{name}.{child}", sub, False)
            made.label = f"{title}: {made.label}"
            out.append(made)
    return out


def form_inputs() -> dict[str, list[Input]]:
    """Per provider, the inputs of its request model, in the model's order."""
    return {name: _inputs(spec.request_model.model_json_schema()) for name, spec in PROVIDERS.items()}


def _converted(i: Input, raw: str) -> Any:
    if i.kind == "number" or (i.kind == "select" and any(isinstance(c, (int, float)) for c in i.choices)):
        return _number(raw)
    return raw


def submit_body(provider: str, form: dict[str, str]) -> dict[str, Any]:
    """The API's submit body from the posted form; whatever was left at its default is left out."""
    request: dict[str, Any] = {}
    for i in form_inputs().get(provider, []):
        raw = form.get(f"{provider}.{i.name}")
        if raw is None or raw == "":
            continue  # an unticked checkbox, an empty box, the "default" choice
        value = True if i.kind == "checkbox" else _converted(i, raw)
        parent, _, child = i.name.partition(".")
        if child:
            request.setdefault(parent, {})[child] = value
        else:
            request[i.name] = value
    body: dict[str, Any] = {"provider": provider, "request": request}
    if form.get("album"):
        body["album"] = form["album"]
    return body


def field_errors(provider: str, errors: list[tuple[str, str]]) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """The errors of the form's fields by input name (`udio.prompt`), and the rest (shown on top)."""
    names = {i.name for i in form_inputs().get(provider, [])}
    by_field: dict[str, list[str]] = {}
    rest = []
    for where, rule in errors:
        name = where.removeprefix("request.")
        if where.startswith("request.") and name in names:
            by_field.setdefault(f"{provider}.{name}", []).append(rule)
        elif where == "album":
            by_field.setdefault("album", []).append(rule)
        else:
            rest.append((where, rule))
    return by_field, rest


def _number(raw: str) -> int | float | str:
    try:
        value = float(raw)
    except ValueError:
        return raw  # the model names the field and the rule
    return int(value) if value.is_integer() and "." not in raw else value
