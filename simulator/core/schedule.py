"""Learning-rate schedules: pure functions of the configuration and the step.

Each schedule is registered with the Config fields it reads, so a run id
hashes those fields only when the schedule uses them.

- constant: the initial rate throughout.
- inverse: inverse-time decay as in ByzantineMomentum (El Mhamdi, Guerraoui
  and Rouault, ICLR 2021): lr / (1 + t / lr_decay), t rounded down to a
  multiple of lr_decay_delta.
- step: multiplied by lr_gamma at each milestone step.
- cosine: cosine annealing from lr to lr_min over the run (Loshchilov and
  Hutter, ICLR 2017).
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from experiments.registry import Registry

if TYPE_CHECKING:
    from simulator.core.config import Config

__all__ = ["SCHEDULES", "Schedule", "learning_rate"]


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule: ``rate(config, step)`` and the Config fields it reads besides lr and steps."""
    rate: Callable[["Config", int], float]
    params: tuple[str, ...] = ()


SCHEDULES: Registry[Schedule] = Registry("learning-rate schedule")
SCHEDULES.add("constant", Schedule(lambda c, t: c.lr), "the initial rate throughout")
SCHEDULES.add("inverse", Schedule(
    lambda c, t: c.lr / (1.0 + (t // c.lr_decay_delta * c.lr_decay_delta) / c.lr_decay),
    ("lr_decay", "lr_decay_delta")), "lr / (1 + t / lr_decay), recomputed every lr_decay_delta steps")
SCHEDULES.add("step", Schedule(
    lambda c, t: c.lr * c.lr_gamma ** bisect.bisect_right(sorted(c.lr_milestones), t),
    ("lr_milestones", "lr_gamma")), "multiplied by lr_gamma at each of lr_milestones")
SCHEDULES.add("cosine", Schedule(
    lambda c, t: c.lr_min + 0.5 * (c.lr - c.lr_min) * (1 + math.cos(math.pi * min(t, c.steps) / c.steps)),
    ("lr_min",)), "cosine annealing from lr to lr_min over the run")


def learning_rate(config: "Config", step: int) -> float:
    """Learning rate at (0-based) `step` under the configured schedule."""
    return SCHEDULES.get(config.lr_schedule).rate(config, step)
