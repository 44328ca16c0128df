"""Parsing and printing of aggregator specs such as ``"bucketing(s=2)>cclip(tau=10)"``.

A spec is a chain of steps separated by ``>``; each step is a name with an
optional parenthesised list of ``key=value`` parameters. Values are parsed
without ``eval``: integers, floats (``1e-3``, ``inf``), booleans
(``true``/``false``), ``none``, quoted strings and bare words (strings).
"""
from __future__ import annotations

import re

from experiments.tools import UserException

__all__ = ["parse", "format_step", "format_value"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def _split(text: str, sep: str, spec: str) -> list[str]:
    """Split on ``sep`` outside quotes and parentheses."""
    parts, depth, quote, start = [], 0, None, 0
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise UserException(f"Unbalanced ')' in aggregator spec {spec!r}.")
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if quote or depth:
        raise UserException(f"Unclosed quote or parenthesis in aggregator spec {spec!r}.")
    parts.append(text[start:])
    return parts


def parse_value(text: str, spec: str) -> object:
    """One parameter value, parsed without eval."""
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
    if _WORD.fullmatch(text):
        return text
    raise UserException(f"Cannot read the value {text!r} in aggregator spec {spec!r}.")


def _parse_step(text: str, spec: str) -> tuple[str, dict[str, object]]:
    text = text.strip()
    name_match = _NAME.match(text)
    if not name_match:
        raise UserException(f"Expected a step name at {text!r} in aggregator spec {spec!r}.")
    name, rest = name_match.group(0).lower(), text[name_match.end():].strip()
    params: dict[str, object] = {}
    if not rest:
        return name, params
    if not (rest.startswith("(") and rest.endswith(")")):
        raise UserException(f"Expected '(key=value, ...)' after {name!r} in aggregator spec {spec!r}.")
    body = rest[1:-1]
    if not body.strip():
        return name, params
    for item in _split(body, ",", spec):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not _NAME.fullmatch(key):
            raise UserException(f"Expected 'key=value' at {item.strip()!r} in aggregator spec {spec!r}.")
        if key in params:
            raise UserException(f"Parameter {key!r} is given twice in aggregator spec {spec!r}.")
        params[key] = parse_value(value, spec)
    return name, params


def parse(spec: str) -> list[tuple[str, dict[str, object]]]:
    """Split a spec into its steps: ``[(name, params), ...]`` in chain order."""
    if not isinstance(spec, str) or not spec.strip():
        raise UserException(f"An aggregator spec must be a non-empty string, got {spec!r}.")
    return [_parse_step(part, spec) for part in _split(spec, ">", spec)]


def format_value(value: object) -> str:
    """The spec text of one parameter value (parsed back to the same value)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    return text if _WORD.fullmatch(text) and text.lower() not in ("true", "false", "none", "null", "inf", "nan") else repr(text)


def format_step(name: str, params: dict[str, object]) -> str:
    """``name`` or ``name(k=v,...)`` in the given parameter order."""
    if not params:
        return name
    return f"{name}({','.join(f'{k}={format_value(v)}' for k, v in params.items())})"
