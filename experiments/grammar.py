"""The one value grammar of byzsim: ``k=v`` lists, specs such as ``"bucketing(s=2)>cclip(tau=10)"``.

Every place a user types a value (CLI options such as ``--model-args``, the
parameters in an aggregator or attack spec, grid files' strings) reads it with
`parse_value`, without ``eval``:

- ``true``/``false``, ``none``/``null``;
- integers (``3``), floats (``0.1``, ``1e-3``, ``inf``, ``nan``);
- quoted strings (``'a b'``, ``"a,b"``) and bare words (``fixed``);
- JSON lists and objects (``[1, 2]``, ``{"k": 5}``).

A spec is ``name`` or ``name(k=v, ...)``; aggregator specs chain several with
``>``. `format_value` and `format_spec` print values back in a form that
`parse_value` reads to the same value, which makes printed specs canonical.
"""
from __future__ import annotations

import json
import math
import re

from experiments.tools import UserException

__all__ = ["parse_value", "parse_mapping", "parse_spec", "format_value", "format_spec", "split_top"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")
_RESERVED = ("true", "false", "none", "null", "inf", "infinity", "nan")
_OPEN, _CLOSE = "([{", ")]}"


def split_top(text: str, sep: str, where: str = "") -> list[str]:
    """Split ``text`` on ``sep`` outside quotes and brackets; ``where`` names it in errors."""
    parts, depth, quote, start = [], 0, None, 0
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth < 0:
                raise UserException(f"Unbalanced {char!r} in {where or repr(text)}.")
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if quote or depth:
        raise UserException(f"Unclosed quote or bracket in {where or repr(text)}.")
    parts.append(text[start:])
    return parts


def parse_value(text: str, where: str = "") -> object:
    """One value typed by a user (see the module docstring); ``where`` names it in errors."""
    text = text.strip()
    lowered = text.lower()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise UserException(f"Cannot read {text!r}{' in ' + where if where else ''}: {err}.") from None
    if _WORD.fullmatch(text):
        return text
    raise UserException(f"Cannot read the value {text!r}{' in ' + where if where else ''}.")


def parse_mapping(text: str, where: str = "") -> dict[str, object]:
    """``k=v,k=v`` (values by `parse_value`) or a JSON object, into a dict."""
    text = text.strip()
    where = where or repr(text)
    if text.startswith("{"):
        value = parse_value(text, where)
        if not isinstance(value, dict):
            raise UserException(f"Expected a JSON object in {where}.")
        return value
    result: dict[str, object] = {}
    for item in split_top(text, ",", where):
        if not item.strip():
            continue
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not _NAME.fullmatch(key):
            raise UserException(f"Expected 'key=value' at {item.strip()!r} in {where}.")
        if key in result:
            raise UserException(f"Parameter {key!r} is given twice in {where}.")
        result[key] = parse_value(value, where)
    return result


def _parse_step(text: str, where: str) -> tuple[str, dict[str, object]]:
    text = text.strip()
    match = _NAME.match(text)
    if not match:
        raise UserException(f"Expected a name at {text!r} in {where}.")
    name, rest = match.group(0).lower(), text[match.end():].strip()
    if not rest:
        return name, {}
    if not (rest.startswith("(") and rest.endswith(")")):
        raise UserException(f"Expected '(key=value, ...)' after {name!r} in {where}.")
    return name, parse_mapping(rest[1:-1], where)


def parse_spec(spec: str, kind: str, *, chain: bool = False) -> list[tuple[str, dict[str, object]]]:
    """``[(name, params), ...]`` of a spec; names are lower-cased; ``chain`` allows ``a>b``.

    ``kind`` (e.g. ``"aggregator"``) names the spec in errors.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise UserException(f"An {kind} spec must be a non-empty string, got {spec!r}.")
    where = f"{kind} spec {spec!r}"
    parts = split_top(spec, ">", where) if chain else [spec]
    return [_parse_step(part, where) for part in parts]


def format_value(value: object) -> str:
    """The text of one value, read back to the same value by `parse_value`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = str(value)
    return text if _WORD.fullmatch(text) and text.lower() not in _RESERVED else repr(text)


def format_spec(name: str, params: dict[str, object]) -> str:
    """``name`` or ``name(k=v,...)``, parameters in the given order."""
    if not params:
        return name
    return f"{name}({','.join(f'{k}={format_value(v)}' for k, v in params.items())})"
