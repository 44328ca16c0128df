"""Learning-rate schedules: registered plug-ins named by a spec (``step(milestones=[100,200])``).

Each maps the initial rate, the (0-based) step and the run's length to the rate in force.

- constant: the initial rate throughout.
- inverse(timescale=5000, every=1): inverse-time decay as in ByzantineMomentum (El
  Mhamdi, Guerraoui and Rouault, ICLR 2021): lr / (1 + t / timescale), t rounded
  down to a multiple of ``every``.
- step(milestones=[], factor=0.1): multiplied by ``factor`` at each milestone step.
- cosine(final_lr=0): cosine annealing from lr to ``final_lr`` over the run
  (Loshchilov and Hutter, ICLR 2017).

A new schedule is one module in this package: a `Schedule` subclass decorated
with ``@register("name")``.
"""
from __future__ import annotations

import bisect
import math

from experiments.plugin import Plugin
from experiments.registry import Registry

__all__ = ["SCHEDULES", "Schedule", "register"]


class Schedule(Plugin):
    """A learning-rate schedule: ``rate(lr, step, steps)``."""

    family = "learning-rate schedule"

    def rate(self, lr: float, step: int, steps: int) -> float:
        raise NotImplementedError


SCHEDULES: Registry[type[Schedule]] = Registry("learning-rate schedule", packages=("simulator.core.schedules",))
register = SCHEDULES.register


@register("constant")
class Constant(Schedule):
    """the initial rate throughout"""

    def rate(self, lr: float, step: int, steps: int) -> float:
        return lr


@register("inverse")
class Inverse(Schedule):
    """lr / (1 + t / timescale), recomputed every `every` steps"""

    timescale: float = 5000.0
    every: int = 1

    def validate(self) -> None:
        self.need(self.timescale > 0 and self.every >= 1, "timescale > 0 and every >= 1")

    def rate(self, lr: float, step: int, steps: int) -> float:
        return lr / (1.0 + (step // self.every * self.every) / self.timescale)


@register("step")
class Step(Schedule):
    """multiplied by factor at each of the milestone steps"""

    milestones: list = []
    factor: float = 0.1

    def validate(self) -> None:
        self.need(all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in self.milestones),
                  "milestones, a list of positive step numbers")
        self.need(self.factor > 0, "factor > 0")
        self.milestones = sorted(self.milestones)  # one spec per schedule, whatever the order given
        if "milestones" in self._given:
            self._given["milestones"] = self.milestones

    def rate(self, lr: float, step: int, steps: int) -> float:
        return lr * self.factor ** bisect.bisect_right(self.milestones, step)


@register("cosine")
class Cosine(Schedule):
    """cosine annealing from lr to final_lr over the run"""

    final_lr: float = 0.0

    def validate(self) -> None:
        self.need(self.final_lr >= 0, "final_lr >= 0")

    def rate(self, lr: float, step: int, steps: int) -> float:
        return self.final_lr + 0.5 * (lr - self.final_lr) * (1 + math.cos(math.pi * min(step, steps) / steps))
