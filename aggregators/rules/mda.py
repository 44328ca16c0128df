"""Minimum-diameter averaging (El Mhamdi, Guerraoui & Rouault, ICML 2018; Rousseeuw 1985).

The mean of the subset of n - f vectors with the smallest diameter (largest
pairwise distance), found exactly by enumerating the C(n, f) subsets to leave
out, in chunks. Requires n >= 2f + 1 and C(n, f) <= max_subsets.
"""
from __future__ import annotations

import math

import torch

from aggregators.base import register
from aggregators.distances import squared_distances, weighted_mean
from aggregators.subsets import SubsetSearch

_CHUNK_ELEMENTS = 1 << 22  # subsets x n x n booleans per chunk


@register("mda")
class MinimumDiameterAveraging(SubsetSearch):
    """Mean of the n-f vectors with the smallest diameter, by exact enumeration (El Mhamdi et al. 2018)."""

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        dist = squared_distances(gradients)
        good = torch.isfinite(dist.diagonal())
        keep = smallest_diameter_subset(dist, f)
        weights = keep.to(gradients.dtype) / (n - f)
        return weighted_mean(weights, gradients, good)


def smallest_diameter_subset(dist: torch.Tensor, f: int) -> torch.Tensor:
    """Boolean [n] mask of the n - f vectors whose largest pairwise distance is smallest.

    Ties in diameter (frequent: removing any vector outside the widest pair gives
    the same one) go to the subset with the smallest sum of pairwise distances.
    """
    n = dist.shape[0]
    device = dist.device
    if f == 0:
        return torch.ones(n, dtype=torch.bool, device=device)
    dropped = torch.combinations(torch.arange(n, device=device), r=f)
    finite = torch.nan_to_num(dist, posinf=torch.finfo(dist.dtype).max / n**2)
    chunk = max(1, _CHUNK_ELEMENTS // (n * n))
    best, best_key = None, (math.inf, math.inf)
    for start in range(0, dropped.shape[0], chunk):
        keep = torch.ones(min(chunk, dropped.shape[0] - start), n, dtype=torch.bool, device=device)
        keep.scatter_(1, dropped[start:start + chunk], False)
        diameter = torch.where(keep[:, :, None] & keep[:, None, :], dist, -math.inf).amax(dim=(1, 2))
        weights = keep.to(dist.dtype)
        total = ((weights @ finite) * weights).sum(dim=1)
        candidates = diameter == diameter.min()
        index = int(torch.where(candidates, total, math.inf).argmin())
        key = (float(diameter[index]), float(total[index]))
        if best is None or key < best_key:
            best, best_key = keep[index], key
    return best
