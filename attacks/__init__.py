"""The attack catalogue: every attack the robust-aggregation literature evaluates.

``get("alie(z=1.5)")`` (or ``get("alie", z=1.5)``) builds one, ``names()``
lists them, ``describe(name)`` gives its one-line summary; each attack is one
module of this package, registered with ``@register(name)``. Every attack
answers ``attack.byzantine(honest[h, d], f, ctx) -> [f, d]``; see
docs/attacks.md.
"""
from __future__ import annotations

from attacks.base import REGISTRY, Attack, AttackContext, DataAttack, GradientAttack
from attacks.targeted import TargetedAttack
from experiments.grammar import format_value, parse_spec
from experiments.tools import UserException

__all__ = ["get", "names", "describe", "Attack", "AttackContext", "GradientAttack", "DataAttack", "TargetedAttack"]


names = REGISTRY.names  # every attack name, sorted


def describe(name: str) -> str:
    """One line describing the attack: its docstring's first line, its type and its parameters."""
    cls = REGISTRY.get(name)
    kind = "targeted data attack" if issubclass(cls, TargetedAttack) else \
        "data attack" if issubclass(cls, DataAttack) else "gradient attack"
    params = ", ".join(f"{k}={format_value(v)}" for k, v in cls.parameters().items())
    return f"{cls.summary()} [{kind}{'; ' + params if params else ''}]"


def get(spec: str, **params: object) -> Attack:
    """Build the attack of ``spec`` (``"alie"``, ``"alie(z=1.5)"``), keyword parameters added, validated."""
    [(name, given)] = parse_spec(spec, "attack")
    overlap = sorted(set(given) & set(params))
    if overlap:
        raise UserException(f"Parameter {overlap[0]!r} of attack {name!r} is given both in the spec {spec!r} "
                            f"and by keyword.")
    return REGISTRY.get(name)(**given, **params)
