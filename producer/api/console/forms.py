"""The console's submit form, generated from each provider's request model.

One input per top-level field of the model's JSON schema: a choice list for an enum, a
checkbox for a bool, a number box with the model's bounds, a text box (a text area for
long text). Nested objects (Udio's `config`) keep their defaults. What the form sends back
is turned into the API's submit body and validated by the same models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from producer.core.models.providers import PROVIDERS


@dataclass
class Input:
    name: str
    label: str
    kind: str  # select, checkbox, number, text, textarea
    required: bool
    default: Any = None
    choices: list[Any] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    step: str = "any"
    help: str = ""


def _input(name: str, prop: dict[str, Any], required: bool) -> Input | None:
    if "$ref" in prop or prop.get("type") == "object":
        return None
    options = prop.get("anyOf")
    if options:  # "X or null": the X part, optional
        prop = {**next(o for o in options if o.get("type") != "null"), **{k: v for k, v in prop.items() if k != "anyOf"}}
    base = Input(name, prop.get("title", name), "text", required, prop.get("default"), help=prop.get("description", ""))
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


def form_inputs() -> dict[str, list[Input]]:
    """Per provider, the inputs of its request model, in the model's order."""
    forms = {}
    for name, spec in PROVIDERS.items():
        schema = spec.request_model.model_json_schema()
        required = set(schema.get("required", ()))
        inputs = [_input(f, p, f in required) for f, p in schema["properties"].items()]
        forms[name] = [i for i in inputs if i is not None]
    return forms


def submit_body(provider: str, form: dict[str, str]) -> dict[str, Any]:
    """The API's submit body from the posted form: empty boxes are left out (the model's
    default applies); numbers and checkboxes are converted; the models do the checking."""
    request: dict[str, Any] = {}
    for i in form_inputs().get(provider, []):
        raw = form.get(f"{provider}.{i.name}")
        if i.kind == "checkbox":
            request[i.name] = raw is not None
        elif raw is None or raw == "":
            continue
        elif i.kind == "number" or (i.kind == "select" and isinstance(i.default, float)):
            request[i.name] = _number(raw)
        else:
            request[i.name] = raw
    body: dict[str, Any] = {"provider": provider, "request": request}
    if form.get("album"):
        body["album"] = form["album"]
    return body


def _number(raw: str) -> int | float | str:
    try:
        value = float(raw)
    except ValueError:
        return raw  # the model names the field and the rule
    return int(value) if value.is_integer() and "." not in raw else value
