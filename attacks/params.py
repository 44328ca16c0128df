"""Validation of attack parameters, so every bad value reads the same way."""
from __future__ import annotations

import math
import numbers

from experiments.tools import UserException

__all__ = ["real", "whole", "choice"]


def real(attack: str, param: str, value: object, *, minimum: float | None = None,
         positive: bool = False) -> float:
    """``value`` as a finite float, at least ``minimum`` (or > 0 when ``positive``).

    Numeric strings (as typed on a command line) are accepted.
    """
    number = _to_float(attack, param, value)
    if positive and not number > 0:
        raise UserException(f"Attack {attack!r}: {param} must be positive, got {value!r}.")
    if minimum is not None and number < minimum:
        raise UserException(f"Attack {attack!r}: {param} must be at least {minimum:g}, got {value!r}.")
    return number


def whole(attack: str, param: str, value: object, *, minimum: int = 0) -> int:
    """``value`` as an int, at least ``minimum``."""
    number = _to_float(attack, param, value)
    if number != int(number) or number < minimum:
        raise UserException(f"Attack {attack!r}: {param} must be a whole number >= {minimum}, got {value!r}.")
    return int(number)


def choice(attack: str, param: str, value: object, options: tuple[str, ...]) -> str:
    """``value`` if it is one of ``options``."""
    if value not in options:
        raise UserException(f"Attack {attack!r}: {param} must be one of {', '.join(options)}; got {value!r}.")
    return str(value)


def _to_float(attack: str, param: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise UserException(f"Attack {attack!r}: {param} must be a number, got {value!r}.")
    try:
        number = float(value)
    except ValueError:
        raise UserException(f"Attack {attack!r}: {param} must be a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise UserException(f"Attack {attack!r}: {param} must be finite, got {value!r}.")
    return number
