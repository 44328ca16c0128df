"""Clipped clustering (Li, Ngai & Voigt, IEEE Trans. Big Data 2023, "An experimental study of
Byzantine-robust aggregation schemes in federated learning").

Every norm the rule has seen is kept (its state); the threshold is
tau = min(median of all those norms, this call's included, max_tau). Each vector
is clipped to norm tau, x_i min(1, tau / |x_i|); the clipped vectors are split in
two clusters by agglomerative clustering with average linkage on cosine
distances 1 - cos(x_i, x_j), and the output is the mean of the clipped vectors
of the larger cluster.

Details: a zero vector is at cosine distance 1 from every other. Non-finite
vectors (and finite ones whose norm overflows) are left out of the clustering
and never averaged; their norm enters the history as +inf (fewer than half of
the norms, so the median stays finite). An equal split goes to the cluster with
the smaller mean pairwise distance. The merges of the clustering are a loop of
at most n - 2 steps, each on the whole [n, n] matrix. Requires n >= 2f + 1: the
larger cluster is taken to be honest.
"""
from __future__ import annotations

import math

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances, squared_distances_to, weighted_mean
from aggregators.rules.signguard import median_of


@register("clippedclustering")
class ClippedClustering(Rule):
    """Clip to the median of all norms seen, then the mean of the larger of two average-linkage cosine clusters (Li et al. 2023)."""

    max_tau: float = 1e5
    bound = (2, 1)
    state_keys = ("norms",)  # every norm seen so far, a 1-D tensor (None at first)

    def validate(self) -> None:
        self.need(self.max_tau > 0, "max_tau > 0")

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        squares = squared_distances_to(gradients)
        norms = squares.sqrt()
        history = norms if self.norms is None else torch.cat([self.norms.to(norms.device), norms])
        self.norms = history
        tau = min(float(median_of(history)), self.max_tau)
        good = torch.isfinite(norms)
        scale = torch.where(norms > tau, tau / norms, 1.0)
        chosen = larger_cluster(cosine_distances(squared_distances(gradients), squares), good)
        weights = torch.where(chosen, scale, 0.0) / chosen.sum()
        return weighted_mean(weights, gradients, good)


def cosine_distances(dist: torch.Tensor, squares: torch.Tensor) -> torch.Tensor:
    """Float64 [n, n] ``1 - cos`` from squared distances and squared norms; 1 next to a zero vector.

    cos_ij = (|x_i|^2 + |x_j|^2 - |x_i - x_j|^2) / (2 |x_i| |x_j|), clamped to [-1, 1].
    Entries of non-finite rows are meaningless (the caller leaves those rows out).
    """
    product = (squares[:, None] * squares[None, :]).sqrt()
    cos = (squares[:, None] + squares[None, :] - dist) / (2 * product)
    cos = torch.where(product > 0, cos.nan_to_num(nan=0.0).clamp(-1.0, 1.0), 0.0)
    out = 1 - cos
    out.fill_diagonal_(0.0)
    return out


def larger_cluster(distance: torch.Tensor, good: torch.Tensor) -> torch.Tensor:
    """Boolean [n]: the larger of two clusters of the ``good`` rows, average linkage on ``distance``.

    Agglomerative clustering: the two closest clusters (smallest mean pairwise
    distance) merge until two remain; the merged row of the cluster distances is
    the size-weighted mean of the two rows (Lance-Williams, average linkage).
    """
    index = good.nonzero().flatten()
    m = index.numel()
    base = distance[index[:, None], index[None, :]]
    if m <= 2:  # one cluster, or two singletons: keep the first good row
        out = torch.zeros_like(good)
        out[index[:1]] = True
        return out
    linkage = base.clone()
    linkage.fill_diagonal_(math.inf)
    label = torch.arange(m, device=distance.device)  # cluster of each row, named by one of its rows
    size = torch.ones(m, dtype=distance.dtype, device=distance.device)
    for _ in range(m - 2):
        i, j = sorted(divmod(int(linkage.argmin()), m))
        merged = (size[i] * linkage[i] + size[j] * linkage[j]) / (size[i] + size[j])
        linkage[i, :] = merged
        linkage[:, i] = merged
        linkage[j, :] = math.inf
        linkage[:, j] = math.inf
        linkage[i, i] = math.inf
        size[i] += size[j]
        label = torch.where(label == j, i, label)
    first, second = label.unique()
    a, b = label == first, label == second
    count_a, count_b = int(a.sum()), int(b.sum())
    if count_a == count_b:
        spread = [base[mask][:, mask].sum() / max(1, count * (count - 1)) for mask, count in ((a, count_a), (b, count_b))]
        keep = a if spread[0] <= spread[1] else b
    else:
        keep = a if count_a > count_b else b
    out = torch.zeros_like(good)
    out[index[keep]] = True
    return out
