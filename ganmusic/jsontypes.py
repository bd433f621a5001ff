"""JSON values against config field annotations: `problem` says why a config's JSON form cannot
be built (not an object, an unknown or missing key, a value of the wrong type), before any value
reaches a dataclass. Kept apart from `configs` so that module holds only the configs.
"""

from __future__ import annotations

import dataclasses
import math


def problem(cls, d, what: str) -> str:
    """"" when `d` fits the dataclass `cls`'s fields, else a one-line reason."""
    if not isinstance(d, dict):
        return f"the {what} config must be a JSON object, got {json_type(d)}"
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        return f"unknown {what} config keys: {sorted(unknown)}"
    for key, value in d.items():
        if not has_json_type(value, str(fields[key].type)):
            return f"{what} config: {key} must be {describe(str(fields[key].type))}, got {value!r:.60}"
    missing = [n for n, f in fields.items() if n not in d
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    return f"{what} config: missing {', '.join(missing)}" if missing else ""


def to_tuple(value):
    return tuple(to_tuple(v) if isinstance(v, list) else v for v in value)


def json_type(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def has_json_type(value, annotation: str) -> bool:
    """Whether a JSON value fits a field annotation ("int", "float | None", "tuple[int, ...]",
    nested configs are checked by their own `from_dict`)."""
    options = [a.strip() for a in annotation.split("|")]
    for a in options:
        if a == "None" and value is None:
            return True
        if a == "int" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if a == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if a == "bool" and isinstance(value, bool):
            return True
        if a == "str" and isinstance(value, str):
            return True
        if a.startswith("tuple[") and isinstance(value, (list, tuple)):
            inner = a[len("tuple["):-1]
            if inner.endswith(", ..."):
                return all(has_json_type(v, inner[: -len(", ...")]) for v in value)
            parts = [p.strip() for p in split_top(inner)]
            return len(parts) == len(value) and all(has_json_type(v, p) for v, p in zip(value, parts))
        if a[:1].isupper() and a.endswith("Config"):  # converted by the parent's from_dict
            return True
    return False


def split_top(text: str) -> list[str]:
    """'int, int' -> ['int', 'int']; commas inside brackets stay."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return out + [cur]


def describe(annotation: str) -> str:
    words = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string", "None": "null"}
    return " or ".join(words.get(a.strip(), "a list" if a.strip().startswith("tuple") else a.strip())
                       for a in annotation.split("|"))


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
