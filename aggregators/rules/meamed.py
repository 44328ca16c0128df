"""Mean around median, MeaMed (Xie, Koyejo & Gupta, 2018, "Generalized Byzantine-tolerant SGD").

Each coordinate is the mean of the n - f values closest to the coordinate's
median (even n: the mean of the two middle values). Requires n >= 2f + 1.
"""
from __future__ import annotations

import torch

from aggregators.base import Rule, register
from aggregators.coordinatewise import mean_around_median


@register("meamed")
class MeanAroundMedian(Rule):
    """Per coordinate, the mean of the n-f values closest to the median (Xie et al. 2018)."""

    def requirement(self, n: int, f: int) -> str | None:
        return None if n >= 2 * f + 1 else "n >= 2f + 1"

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        return mean_around_median(gradients, gradients.shape[0] - f)
