"""Declared parameters: how every aggregator step and attack takes its settings.

A plug-in declares its parameters as annotated class attributes with defaults::

    class CenteredClipping(Rule):
        tau: float = 10.0
        iters: int = 1

The constructor takes them as keywords only, coerces each value to its
annotation (``int``, ``float``, ``bool``, ``str``, ``X | None``, ``Literal[...]``;
numbers typed as text are read with the value grammar), refuses unknown
names, and calls `validate` for ranges. `spec` prints the name and the
parameters that differ from their defaults (``cclip(tau=5.0)``) and reads back
to an equal object; `canonical` prints every parameter, defaults filled, which
is what a run id hashes.
"""
from __future__ import annotations

import math
import typing
from typing import Any, ClassVar, Literal

from experiments.grammar import format_spec, parse_value
from experiments.tools import UserException

__all__ = ["Plugin", "coerce"]


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(kind))
    return {float: "a number", int: "a whole number", bool: "true or false", str: "a string"}.get(
        kind, getattr(kind, "__name__", str(kind)))


def coerce(owner: str, key: str, kind: Any, value: object, *, text: bool = True) -> object:
    """``value`` as the declared type ``kind``, or `UserException` naming ``owner`` and ``key``.

    With ``text`` a number or list may come as text (``"0.5"``, from a spec); without, only as itself.
    """
    args = typing.get_args(kind)
    if typing.get_origin(kind) is not Literal and type(None) in args:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        kind = next(a for a in args if a is not type(None))
    if isinstance(value, str) and kind is not str and text:
        value = parse_value(value, f"{owner} parameter {key}")
    if typing.get_origin(kind) is Literal:
        for allowed in typing.get_args(kind):
            if value == allowed and type(value) is type(allowed):
                return value
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isnan(value):
            return float(value)
    elif kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    elif isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise UserException(f"{owner}: parameter {key!r} must be {_type_name(kind)}, got {value!r}.")


class Plugin:
    """Declared, typed, validated parameters and a canonical spec (see the module docstring)."""

    name: ClassVar[str] = "plugin"
    family: ClassVar[str] = "plug-in"  # "aggregator", "attack": names the plug-in in messages
    neutral: ClassVar[tuple[str, ...]] = ()  # parameters that never change a run's numbers (a timeout)
    # Parameters added after runs were made with the plug-in: at their default they stay out of the identity,
    # so those runs keep their ids (their default is the behaviour the plug-in had without them).
    added: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: object) -> None:
        self._given: dict[str, object] = {}
        declared = self.parameters()
        unknown = sorted(set(params) - set(declared))
        if unknown:
            takes = f"its parameters are {', '.join(declared)}" if declared else "it takes no parameters"
            raise UserException(f"{self.family.capitalize()} {self.name!r} has no parameter "
                                f"{', '.join(map(repr, unknown))}; {takes}.")
        hints = typing.get_type_hints(type(self))
        for key, default in declared.items():
            value = coerce(f"{self.family.capitalize()} {self.name!r}", key, hints[key], params[key]) \
                if key in params else default
            setattr(self, key, value)
            if key in params and not (type(value) is type(default) and value == default):  # type included
                self._given[key] = value
        self.validate()

    @classmethod
    def parameters(cls) -> dict[str, object]:
        """Declared parameters and their defaults, in declaration order."""
        hints = typing.get_type_hints(cls)
        found: dict[str, object] = {}
        for klass in reversed(cls.__mro__):
            for key in klass.__dict__.get("__annotations__", {}):
                if typing.get_origin(hints.get(key)) is not ClassVar and not key.startswith("_"):
                    found[key] = getattr(cls, key)
        return found

    @classmethod
    def summary(cls) -> str:
        """First line of the docstring: the one-line description for listings."""
        return (cls.__doc__ or cls.name).strip().splitlines()[0]

    @property
    def spec(self) -> str:
        """The name and the parameters that differ from their defaults; reads back to an equal object."""
        return format_spec(self.name, self._given)

    @property
    def canonical(self) -> str:
        """The name and every parameter, defaults filled: one text per distinct behaviour."""
        return format_spec(self.name, {key: getattr(self, key) for key in self.parameters()})

    @property
    def identity(self) -> str:
        """The canonical form without the `neutral` parameters, nor `added` ones at their default: what a run
        id hashes."""
        defaults = self.parameters()
        kept = {k: getattr(self, k) for k in defaults if k not in self.neutral}
        return format_spec(self.name, {k: v for k, v in kept.items() if not (k in self.added and v == defaults[k])})

    def __str__(self) -> str:
        return self.spec

    def validate(self) -> None:
        """Raise `UserException` (through `need`) for parameter values out of range."""

    def need(self, ok: bool, requirement: str) -> None:
        """Raise the standard message when a parameter requirement is not met."""
        if not ok:
            raise UserException(f"{self.family.capitalize()} {self.name!r} needs {requirement}, got {self.spec}.")
