"""Mimic (Karimireddy, He & Jaggi, ICLR 2022, "Byzantine-robust learning on
heterogeneous datasets via bucketing").

Every Byzantine worker copies one honest worker's vector, over-representing
that worker's data: harmless with i.i.d. data, damaging with heterogeneous
data. By default the copied worker is fixed (``worker``). With
``heuristic="variance"`` the paper's heuristic picks it: during the first
``warmup`` steps it tracks the honest vectors' running mean mu and, by one
power-iteration step per call, their direction of maximum variance z; the
copied worker is argmax_i <z, x_i>, frozen once the warmup ends.
"""
from __future__ import annotations

import torch

from attacks.base import AttackContext, GradientAttack, register
from attacks.params import choice, whole
from experiments.tools import UserException


@register("mimic")
class Mimic(GradientAttack):
    """Mimic (Karimireddy et al. 2022): copy one honest worker (fixed or max-variance)."""

    def __init__(self, worker: int = 0, heuristic: str = "fixed", warmup: int = 10):
        self.worker = whole(self.name, "worker", worker)
        self.heuristic = choice(self.name, "heuristic", heuristic, ("fixed", "variance"))
        self.warmup = whole(self.name, "warmup", warmup, minimum=1)
        self._step = 0
        self._mean: torch.Tensor | None = None
        self._direction: torch.Tensor | None = None
        self._target = self.worker

    def params(self) -> dict[str, object]:
        if self.heuristic == "fixed":
            return {"worker": self.worker}
        return {"heuristic": self.heuristic, "warmup": self.warmup}

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
        power = dev.T @ (dev @ z) / honest.shape[0]
        z = z.mul(t / (t + 1)).add_(power, alpha=1 / (t + 1))
        norm = torch.linalg.vector_norm(z)
        self._direction = z / norm if norm > 0 else z
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


def _initial_direction(dev: torch.Tensor) -> torch.Tensor:
    """Start the power iteration from the most deviating honest vector (no randomness needed)."""
    row = dev[torch.linalg.vector_norm(dev, dim=1).argmax()]
    norm = torch.linalg.vector_norm(row)
    return row / norm if norm > 0 else torch.full_like(row, dev.shape[1] ** -0.5)
