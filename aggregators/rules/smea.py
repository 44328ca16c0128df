"""Smallest Maximum Eigenvalue Averaging, SMEA (Allouah, Guerraoui, Gupta, Pinot & Stephan, ICML 2023,
"On the privacy-robustness-utility trilemma in distributed learning"; ByzFL's ``SMEA``).

The mean of the subset S of n - f vectors whose empirical covariance
(1/|S|) sum_{i in S} (x_i - mean_S)(x_i - mean_S)^T has the smallest largest
eigenvalue, found exactly over all C(n, f) subsets. Requires n >= 2f + 1 and
C(n, f) <= max_subsets.

Each subset's covariance shares its non-zero eigenvalues with the small
(n - f) x (n - f) matrix (1/|S|) J K_S J, K_S its rows' Gram matrix and J the
centring projection; J K_S J = -1/2 J D_S J from the pairwise squared
distances D_S, so every subset is read off one [n, n] distance matrix
(`squared_distances`: exact on near-identical vectors, +inf for a non-finite
vector, which puts every subset holding it at +inf). The eigenvalues come from
`torch.linalg.eigvalsh`, batched over chunks of subsets: after the one O(n^2 d)
distance pass the cost is O(C(n, f) (n - f)^3), independent of d. Measured on
one CPU thread (float64, the shared 2-core machine of docs/aggregators.md): the
batched eigenvalues alone take about 3 us per subset at n - f = 8, 14 us at 20
and 65 us at 45; a whole call at n = 25, f = 5 (53,130 subsets, d = 1e5) took
1.1 s, so the default cap of 200,000 subsets is a few seconds a call at
n - f <= 20. The cap is byzsim's cost guard, not the paper's (ByzFL
enumerates without one).

ByzFL takes as each subset's largest eigenvalue the norm of Sigma_S v0 for one
random unit vector v0 (one power-method step), exact only when d = 1; here it
is exact, so the two choose the same subset for d = 1 (40 random problems
agree to 2e-16, `byzfl==0.0.11`) and may differ otherwise. Ties in the largest
eigenvalue go to the first subset in lexicographic order of the rows kept
(ByzFL's order): the lowest row indices are kept.
"""
from __future__ import annotations

import math

import torch

from aggregators.base import register
from aggregators.distances import squared_distances, weighted_mean
from aggregators.subsets import SubsetSearch

_CHUNK_ELEMENTS = 1 << 22  # subsets x (n - f)^2 float64 entries per chunk


@register("smea")
class SmallestMaximumEigenvalueAveraging(SubsetSearch):
    """Mean of the n-f vectors whose covariance has the smallest largest eigenvalue, exact (Allouah et al. 2023)."""

    max_subsets: int = 200_000

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        dist = squared_distances(gradients)
        keep = smallest_eigenvalue_subset(dist, f)
        return weighted_mean(keep.to(gradients.dtype) / (n - f), gradients, torch.isfinite(dist.diagonal()))


def subset_top_eigenvalues(dist: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """[B] largest eigenvalue of the covariance of each subset of rows ``kept`` [B, m] (+inf if one is non-finite)."""
    m = kept.shape[1]
    block = dist[kept[:, :, None], kept[:, None, :]]  # [B, m, m] squared distances
    bad = torch.isinf(block).any(dim=2).any(dim=1)
    block = block.masked_fill(torch.isinf(block), 0.0)
    rows = block.mean(dim=2, keepdim=True)
    centred = -0.5 * (block - rows - rows.transpose(1, 2) + rows.mean(dim=1, keepdim=True))  # J K J
    top = torch.linalg.eigvalsh(centred)[:, -1] / m
    return top.masked_fill(bad, math.inf)


def smallest_eigenvalue_subset(dist: torch.Tensor, f: int) -> torch.Tensor:
    """Boolean [n] mask of the n - f rows whose covariance has the smallest largest eigenvalue (ties: lowest rows)."""
    n = dist.shape[0]
    device = dist.device
    if f == 0:
        return torch.ones(n, dtype=torch.bool, device=device)
    dropped = torch.combinations(torch.arange(n, device=device), r=f).flip(0)  # kept rows in lexicographic order
    chunk = max(1, _CHUNK_ELEMENTS // ((n - f) ** 2))
    best, best_value = None, math.inf
    for start in range(0, dropped.shape[0], chunk):
        keep = torch.ones(min(chunk, dropped.shape[0] - start), n, dtype=torch.bool, device=device)
        keep.scatter_(1, dropped[start:start + chunk], False)
        kept = keep.nonzero()[:, 1].view(keep.shape[0], n - f)
        top = subset_top_eigenvalues(dist, kept)
        index = int(top.argmin())
        if best is None or float(top[index]) < best_value:
            best, best_value = keep[index], float(top[index])
    return best
