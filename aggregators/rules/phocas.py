"""Phocas (Xie, Koyejo & Gupta, 2018, "Phocas: dimensional Byzantine-resilient stochastic gradient descent").

Each coordinate is the mean of the n - f values closest to the coordinate's
trimmed mean (f trimmed on each side). Requires n >= 2f + 1.
"""
from __future__ import annotations

import torch

from aggregators.base import Rule, register
from aggregators.coordinatewise import mean_around_trimmed_mean


@register("phocas")
class Phocas(Rule):
    """Per coordinate, the mean of the n-f values closest to the trimmed mean (Xie et al. 2018)."""

    bound = (2, 1)

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        return mean_around_trimmed_mean(gradients, f)
