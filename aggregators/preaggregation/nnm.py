"""Nearest-neighbour mixing, NNM (Allouah et al., AISTATS 2023, "Fixing by mixing").

Each vector is replaced by the mean of its n - f nearest neighbours (itself
included); the next rule still sees (n, f). A non-finite vector cannot be
measured: its output row is NaN, and no finite vector mixes it in while at most
f vectors are non-finite. Requires n >= f + 1.
"""
from __future__ import annotations

import torch

from aggregators.base import PreAggregation, register
from aggregators.distances import combine, squared_distances


@register("nnm")
class NearestNeighbourMixing(PreAggregation):
    """Replace each vector by the mean of its n-f nearest neighbours (Allouah et al. 2023)."""

    def requirement(self, n: int, f: int) -> str | None:
        return None if n >= f + 1 else "n >= f + 1"

    def transform(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        dist = squared_distances(gradients)
        good = torch.isfinite(dist.diagonal())
        dist.diagonal()[~good] = -1.0  # a non-finite row's only "neighbour" is itself
        nearest = dist.topk(n - f, dim=1, largest=False).indices
        weights = torch.zeros(n, n, dtype=gradients.dtype, device=gradients.device)
        weights.scatter_(1, nearest, 1.0 / (n - f))
        return combine(weights, gradients, good)
