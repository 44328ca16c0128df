"""The attack catalogue: every attack the robust-aggregation literature evaluates.

``get(name, **params)`` builds one, ``names()`` lists them, ``describe(name)``
gives its one-line summary. Gradient attacks are called
``attack(honest[h, d], f, ctx) -> [f, d]``; the data attack poisons batches
through ``attack.poison(inputs, targets, num_classes)``. See docs/attacks.md.
"""
from __future__ import annotations

import inspect

from attacks import (  # noqa: F401  (each module registers its attacks)
    adaptive, alie, bitflip, gaussian, ipm, labelflip, mimic, minmax, none, nonfinite, signflip, zero,
)
from attacks.base import Attack, AttackContext, DataAttack, GradientAttack, lookup, registry
from experiments.tools import UserException

__all__ = ["get", "names", "describe", "Attack", "AttackContext", "GradientAttack", "DataAttack"]


def names() -> list[str]:
    """Every attack name, sorted."""
    return sorted(registry())


def describe(name: str) -> str:
    """One line describing the attack (its docstring's first line)."""
    doc = inspect.getdoc(lookup(name)) or name
    return doc.splitlines()[0]


def get(name: str, **params: object) -> Attack:
    """Build the attack ``name`` with its parameters, validated."""
    cls = lookup(name)
    signature = inspect.signature(cls.__init__).parameters.values()
    accepted = [p.name for p in signature if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        takes = f"its parameters are {', '.join(accepted)}" if accepted else "it takes no parameters"
        raise UserException(f"Attack {name!r} has no parameter {', '.join(map(repr, unknown))}; {takes}.")
    return cls(**params)
