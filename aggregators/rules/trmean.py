"""Coordinate-wise trimmed mean (Yin et al., ICML 2018).

Each coordinate drops its f largest and f smallest values and averages the
n - 2f others; with f = 0 it is the mean. Requires n >= 2f + 1.
"""
from __future__ import annotations

import torch

from aggregators.base import Rule, register
from aggregators.coordinatewise import trimmed_mean


@register("trmean")
class TrimmedMean(Rule):
    """Coordinate-wise trimmed mean: drop the f largest and f smallest values (Yin et al. 2018)."""

    bound = (2, 1)

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        return trimmed_mean(gradients, f)
