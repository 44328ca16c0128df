"""Mimic (Karimireddy, He & Jaggi, ICLR 2022, "Byzantine-robust learning on
heterogeneous datasets via bucketing").

Every Byzantine worker copies one honest worker's vector, over-representing
that worker's data: harmless with i.i.d. data, damaging with heterogeneous
data. By default the copied worker is fixed (``worker``). With
``heuristic="variance"`` the paper's heuristic picks it: during the first
``warmup`` steps it tracks the honest vectors' running mean mu and, by one
power-iteration step per call, their direction of maximum variance z: the
normalised power step sum_i <x_i - mu, z> (x_i - mu) / |...| enters a running
mean of unit directions, as in the authors' code, so the direction found does
not depend on the gradients' scale; the copied worker is argmax_i <z, x_i>,
frozen once the warmup ends.
"""
from __future__ import annotations

from typing import Literal

import torch

from attacks.base import AttackContext, GradientAttack, register
from experiments.tools import UserException


@register("mimic")
class Mimic(GradientAttack):
    """Mimic (Karimireddy et al. 2022): copy one honest worker (fixed or max-variance)."""

    worker: int = 0
    heuristic: Literal["fixed", "variance"] = "fixed"
    warmup: int = 10

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._step = 0
        self._mean: torch.Tensor | None = None
        self._direction: torch.Tensor | None = None
        self._target = self.worker

    def validate(self) -> None:
        self.need(self.worker >= 0 and self.warmup >= 1, "worker >= 0 and warmup >= 1")

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        if self.heuristic == "variance" and self._step < self.warmup:
            self._track(honest)
        if self._target >= honest.shape[0]:
            raise UserException(f"Attack 'mimic' copies honest worker {self._target}, "
                                f"but there are only {honest.shape[0]} honest workers.")
        return honest[self._target]

    def _track(self, honest: torch.Tensor) -> None:
        """One warmup step: update mu, one power-iteration step on z, then the target."""
        t = self._step
        mean = honest.mean(dim=0)
        self._mean = mean if self._mean is None else self._mean.mul(t / (t + 1)).add_(mean, alpha=1 / (t + 1))
        dev = honest - self._mean
        z = self._direction if self._direction is not None else _initial_direction(dev)
        z = z.mul(t / (t + 1)).add_(_unit(dev.T @ (dev @ z)), alpha=1 / (t + 1))
        self._direction = _unit(z)
        self._target = int((dev @ self._direction).argmax())
        self._step = t + 1

    def state_dict(self) -> dict:
        if self.heuristic == "fixed":
            return {}
        return {"step": self._step, "target": self._target, "mean": self._mean, "direction": self._direction}

    def load_state_dict(self, state: dict) -> None:
        if self.heuristic == "fixed":
            return super().load_state_dict(state)
        self._step, self._target = int(state["step"]), int(state["target"])
        self._mean, self._direction = state["mean"], state["direction"]


def _unit(z: torch.Tensor) -> torch.Tensor:
    """``z`` scaled to norm 1 (zero stays zero): the step does not depend on the gradients' scale."""
    norm = torch.linalg.vector_norm(z)
    return z / norm if norm > 0 else z


def _initial_direction(dev: torch.Tensor) -> torch.Tensor:
    """Start the power iteration from the most deviating honest vector (no randomness needed)."""
    row = dev[torch.linalg.vector_norm(dev, dim=1).argmax()]
    norm = torch.linalg.vector_norm(row)
    return row / norm if norm > 0 else torch.full_like(row, dev.shape[1] ** -0.5)
