"""Learning-rate schedules: pure functions of the configuration and the step.

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
from typing import TYPE_CHECKING

from experiments.tools import UnavailableException

if TYPE_CHECKING:
    from simulator.config import Config

Schedule = Callable[["Config", int], float]
SCHEDULES: dict[str, Schedule] = {
    "constant": lambda c, t: c.lr,
    "inverse": lambda c, t: c.lr / (1.0 + (t // c.lr_decay_delta * c.lr_decay_delta) / c.lr_decay),
    "step": lambda c, t: c.lr * c.lr_gamma ** bisect.bisect_right(sorted(c.lr_milestones), t),
    "cosine": lambda c, t: c.lr_min + 0.5 * (c.lr - c.lr_min) * (1 + math.cos(math.pi * min(t, c.steps) / c.steps)),
}


def learning_rate(config: "Config", step: int) -> float:
    """Learning rate at (0-based) `step` under the configured schedule."""
    try:
        schedule = SCHEDULES[config.lr_schedule]
    except KeyError:
        raise UnavailableException("learning-rate schedule", config.lr_schedule, SCHEDULES) from None
    return schedule(config, step)
