"""The checks of a whole configuration that are plain functions of it: each field within its declared range
or choices (`ranges`), and what must hold between fields (`relations`).

Each check is a (holds, message) pair; `Config.validate` raises the first that fails as one line.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from simulator.core.optim import LOOKAHEAD

if TYPE_CHECKING:
    from simulator.core.config import Config

__all__ = ["outside", "ranges", "relations"]


def outside(value: Any, within: str) -> bool:
    """Whether a number lies outside an interval written ``[low, high)`` (``inf`` allowed)."""
    low, high = (float(x) for x in within[1:-1].split(","))
    return value < low or value > high or (within[0] == "(" and value == low) or (within[-1] == ")" and value == high)


def ranges(c: "Config") -> list[tuple[bool, str]]:
    """Every field within the range or among the choices declared with it."""
    checks = []
    for f in dataclasses.fields(c):
        value, within, choices = getattr(c, f.name), f.metadata["within"], f.metadata["choices"]
        if within and value is not None:
            wanted = {"(0, inf)": "positive", "[0, inf)": "non-negative", "[1, inf)": "at least 1"}.get(
                within, f"in {within}")
            checks.append((not outside(value, within), f"{f.name} must be {wanted}, got {value}"))
        if choices:
            checks.append((value in choices, f"{f.name} must be one of {', '.join(map(str, choices))}, got {value!r}"))
    return checks


def relations(c: "Config") -> list[tuple[bool, str]]:
    """What holds between fields: workers and attackers, the pool, momentum and the server optimiser."""
    where = "clients" if c.clients is not None else "nb_workers"
    return [
        (c.nb_decl_byz < c.per_round,
         f"nb_decl_byz ({c.nb_decl_byz}) must be below the {c.per_round} workers of a step"),
        (c.real_byz < c.pool, f"the real number of Byzantine workers ({c.real_byz}) must be below {where} ({c.pool})"),
        (getattr(c.parts["lr_schedule"], "final_lr", 0) <= c.lr, "the schedule's final_lr must be at most lr"),
        (not c.nesterov or c.momentum > 0, "nesterov needs a positive momentum"),
        (c.nesterov is not True or c.momentum_at != "server",
         'momentum at server has no torch-form Nesterov: use nesterov = "lookahead"'),
        (c.nesterov != LOOKAHEAD or not (c.federated or c.parts["execution"].distributed),
         "look-ahead Nesterov takes one-gradient steps in one process (no federated rounds, no torchrun)"),
        (c.clients is not None or (c.clients_per_round is None and c.participation is None),
         "clients_per_round and participation need a pool: set clients"),
        (c.clients_per_round is None or c.participation is None, "give clients_per_round or participation, not both"),
        (c.clients_per_round is None or c.clients_per_round <= c.pool,
         f"clients_per_round must be in [1, clients] (clients = {c.pool})"),
        (c.parts["server_opt"].name == "sgd" or c.momentum == 0 or c.momentum_at == "worker",
         "adam and yogi keep their own moments: with server_opt adam or yogi, place momentum at the workers"),
        (not c.federated or not c.parts["execution"].distributed,
         "torchrun execution runs one-gradient steps; federated rounds run in one process"),
        (c.parts["privacy"].name == "none" or not c.parts["execution"].distributed,
         "privacy runs in one process (local execution), not under torchrun"),
        *c.parts["privacy"].relations(c),
    ]
