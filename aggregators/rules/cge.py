"""Comparative gradient elimination, CGE (Gupta, Liu & Vaidya, 2021, "Byzantine fault-tolerant distributed machine learning with norm-based comparative gradient elimination").

The mean of the n - f vectors with the smallest Euclidean norms (non-finite
vectors have infinite norm). Requires n >= 2f + 1.
"""
from __future__ import annotations

import math

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances_to, weighted_mean


@register("cge")
class ComparativeGradientElimination(Rule):
    """Mean of the n-f vectors with the smallest norms (Gupta et al. 2021)."""

    bound = (2, 1)

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        norms = squared_distances_to(gradients)
        chosen = norms.topk(n - f, largest=False).indices
        weights = torch.zeros(n, dtype=gradients.dtype, device=gradients.device)
        weights[chosen] = 1.0 / (n - f)
        return weighted_mean(weights, gradients, norms != math.inf)
