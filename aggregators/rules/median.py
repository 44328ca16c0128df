"""Coordinate-wise median (Yin et al., ICML 2018, "Byzantine-robust distributed learning").

Each coordinate is the median of the n values; for even n, the mean of the two
middle values. Requires n >= 2f + 1 (an honest majority in every coordinate).
"""
from __future__ import annotations

import torch

from aggregators.base import Rule, register
from aggregators.coordinatewise import median


@register("median")
class Median(Rule):
    """Coordinate-wise median (mean of the two middle values for even n; Yin et al. 2018)."""

    bound = (2, 1)

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        return median(gradients, f)
