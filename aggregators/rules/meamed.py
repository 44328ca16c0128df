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

    bound = (2, 1)

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        return mean_around_median(gradients, f)
