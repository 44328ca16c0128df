"""A Little Is Enough (Baruch, Baruch & Goldberg, NeurIPS 2019).

Every Byzantine worker sends ``mean - z * std``, coordinate-wise over the
honest vectors. The paper picks the largest z that still lets the Byzantine
vector pass as one of the s = floor(n/2 + 1) - f honest "supporters" it needs:
z = Phi^-1((n - s) / n), Phi the standard normal CDF, n all workers, f the
Byzantine ones. The formula needs a Byzantine minority (s >= 1). A fixed z
(1.5 in the EPFL code and ByzFL) can be given instead.
"""
from __future__ import annotations

import math
from statistics import NormalDist

import torch

from attacks.base import AttackContext, GradientAttack, register
from attacks.params import real
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

    def __init__(self, z: float | None = None):
        self.z = None if z is None else real(self.name, "z", z, minimum=0.0)

    def params(self) -> dict[str, object]:
        return {"z": "formula" if self.z is None else self.z}

    def scale(self, f: int, ctx: AttackContext) -> float:
        """The z used with f Byzantine vectors among ``ctx.nb_workers``."""
        return alie_z(ctx.nb_workers, f) if self.z is None else self.z

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        z = self.scale(f, ctx)
        mean, dev = deviations(honest)
        return mean.sub_(coordinate_std(dev, consume=True), alpha=z)
