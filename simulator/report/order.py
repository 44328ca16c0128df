"""The order of a report's rules, attacks and setting values: the grid file's own, else by name and value.

A report given the runs of its grid in the grid file's order (an
*expansion*: their identities, as `simulator.grid.order.expansion` reads them
from the ``grid.toml`` the runner copies into its output) ranks each
aggregator, attack and value of every other identity field by where it first
appears there; a rule, attack or value the expansion does not hold comes
after the ranked ones, in the default order. Without an expansion the default
order holds: rules by name, the attack-free ``none`` first and then attacks
by name, setting values None first, then numbers, then text.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ATTACK_FREE", "BY_NAME", "Order", "attack_key", "freeze", "order_key", "ranks"]

ATTACK_FREE = "none"
ROLES = ("aggregator", "attack")

# field -> {value as a setting holds it (`freeze`): rank of its first appearance}
Ranks = Mapping[str, Mapping[Any, int]]


def order_key(value: Any) -> tuple:
    """A total order on setting values: None, then numbers, then the rest as text."""
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def attack_key(attack: str) -> tuple:
    """The attack-free reference first, then attacks by name."""
    return (attack != ATTACK_FREE, attack)


def freeze(value: Any) -> Any:
    """A value made hashable: lists and dicts as their JSON text."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def _ranked(rank: int | None, fallback: tuple) -> tuple:
    return (0, rank) if rank is not None else (1, fallback)


@dataclass(frozen=True)
class Order:
    """Sort keys for what a report shows: ranked names first (in rank order), the others after by name."""

    aggregators: Mapping[str, int] = field(default_factory=dict)  # display name -> rank
    attacks: Mapping[str, int] = field(default_factory=dict)
    values: Ranks = field(default_factory=dict)  # setting field -> frozen value -> rank

    @classmethod
    def of(cls, ranks: Ranks, shown: Iterable[tuple[str, str, Mapping[str, Any]]]) -> "Order":
        """The order of ``ranks`` (canonical specs) for the names shown: (aggregator, attack, identity) triples."""
        names: dict[str, dict[str, int]] = {role: {} for role in ROLES}
        for aggregator, attack, identity in shown:
            for role, name in zip(ROLES, (aggregator, attack)):
                rank = ranks.get(role, {}).get(identity[role])
                if rank is not None:
                    names[role][name] = min(rank, names[role].get(name, rank))
        return cls(names["aggregator"], names["attack"], {k: v for k, v in ranks.items() if k not in ROLES})

    def aggregator(self, name: str) -> tuple:
        return _ranked(self.aggregators.get(name), (name,))

    def attack(self, name: str) -> tuple:
        return _ranked(self.attacks.get(name), attack_key(name))

    def value(self, name: str, value: Any) -> tuple:
        return _ranked(self.values.get(name, {}).get(value), order_key(value))

    def setting(self, setting: tuple[tuple[str, Any], ...]) -> tuple:
        return tuple(self.value(name, value) for name, value in setting)


BY_NAME = Order()  # the default order, for a folder without a grid file


def ranks(expansion: Iterable[Mapping[str, Any]]) -> dict[str, dict[Any, int]]:
    """Per identity field, each value's rank of first appearance in ``expansion`` (identities, in order)."""
    out: dict[str, dict[Any, int]] = {}
    for identity in expansion:
        for key, value in identity.items():
            values = out.setdefault(key, {})
            values.setdefault(freeze(value), len(values))
    return out
