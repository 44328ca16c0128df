"""A Little Is Enough (Baruch, Baruch & Goldberg, NeurIPS 2019).

Every Byzantine worker sends ``mean - z * std``, coordinate-wise over the
honest vectors. The paper picks the largest z that still lets the Byzantine
vector pass as one of the s = floor(n/2 + 1) - f honest "supporters" it needs:
z = Phi^-1((n - s) / n), Phi the standard normal CDF, n all workers, f the
Byzantine ones. The formula needs a Byzantine minority (s >= 1). A fixed z can
be given instead; a negative z adds the std, which is ByzFL's convention
(its ``ALittleIsEnough(tau)`` sends ``mean + tau * std``: byzsim's z = -tau).
"""
from __future__ import annotations

import math
from statistics import NormalDist

import torch

from attacks.base import AttackContext, GradientAttack, register
from attacks.stats import coordinate_std, deviations
from experiments.tools import UserException

__all__ = ["ALittleIsEnough", "alie_z"]


def alie_z(n: int, f: int) -> float:
    """The paper's z for n workers of which f are Byzantine (Baruch et al. 2019, Alg. 3)."""
    s = math.floor(n / 2 + 1) - f
    if f < 1 or s < 1 or n < 1:
        raise UserException(f"Attack 'alie': the paper's z needs 1 <= f < floor(n/2 + 1) "
                            f"(got n = {n}, f = {f}); pass a fixed z instead.")
    return NormalDist().inv_cdf((n - s) / n)


@register("alie")
class ALittleIsEnough(GradientAttack):
    """A Little Is Enough (Baruch et al. 2019): honest mean - z * coordinate-wise std."""

    z: float | None = None  # None: the paper's formula

    def validate(self) -> None:
        self.need(self.z is None or math.isfinite(self.z), "a finite z")

    def scale(self, f: int, ctx: AttackContext) -> float:
        """The z used with f Byzantine vectors among ``ctx.nb_workers``."""
        return alie_z(ctx.nb_workers, f) if self.z is None else self.z

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        z = self.scale(f, ctx)
        mean, dev = deviations(honest)
        return mean.sub_(coordinate_std(dev, consume=True), alpha=z)
