"""SignGuard (Xu, Huang, Song & Lan, ICDCS 2022, "SignGuard: Byzantine-robust federated
learning through collaborative malicious gradient filtering").

Two filters run side by side and the vectors passing both are averaged after clipping:

- Norm filter: with M the median of the n norms, keep x_i when
  lower M <= |x_i| <= upper M (the paper's L = 0.1, R = 3).
- Sign filter: on a random subset of ceil(fraction d) coordinates (all of them when
  fraction = 1), each vector's feature is the fractions of its positive, zero and
  negative entries; the features are split in two clusters and the larger is kept.
- Output: mean over the vectors kept by both filters of x_i min(1, M / |x_i|).

Simplification: the paper clusters the sign features with mean-shift; here a
deterministic 2-means (Lloyd's iterations, seeded at the coordinate-wise median
of the features and at the feature farthest from it) does, so the larger of two
clusters is kept (with no attacker, roughly the larger half of the honest
vectors). When no vector passes both filters (possible only in contrived
inputs), the norm filter's vectors are averaged. Non-finite vectors (and finite
ones whose norm overflows) are never kept. The coordinate subset is drawn from
the rule's generator (randomised). Requires n >= 2f + 1: the larger sign cluster
and the median norm are taken to be honest.
"""
from __future__ import annotations

import math

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances_to, weighted_mean

_LLOYD_ITERATIONS = 50  # upper bound; 2-means on n points settles in a few


@register("signguard")
class SignGuard(Rule):
    """Mean of the median-clipped vectors passing a norm-ratio filter and a sign-statistics clustering (Xu et al. 2022)."""

    randomised = True
    bound = (2, 1)
    lower: float = 0.1
    upper: float = 3.0
    fraction: float = 0.1

    def validate(self) -> None:
        self.need(0 <= self.lower <= 1 <= self.upper, "0 <= lower <= 1 <= upper")
        self.need(0 < self.fraction <= 1, "0 < fraction <= 1")

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        norms = squared_distances_to(gradients).sqrt()
        good = torch.isfinite(norms)
        median = median_of(norms)
        by_norm = good & (norms >= self.lower * median) & (norms <= self.upper * median)
        columns = self.random_columns(gradients, math.ceil(self.fraction * gradients.shape[1]))
        by_sign = good & larger_of_two_means(sign_features(columns), good)
        kept = by_norm & by_sign
        if not bool(kept.any()):
            kept = by_norm
        scale = torch.where(norms > median, median / norms, 1.0)
        weights = torch.where(kept, scale, 0.0) / kept.sum()
        return weighted_mean(weights, gradients, good)


def median_of(values: torch.Tensor) -> torch.Tensor:
    """Median of a 1-D tensor, the mean of the two middle values when its length is even."""
    s = values.sort().values
    n = s.numel()
    return (s[(n - 1) // 2] + s[n // 2]) / 2


def sign_features(x: torch.Tensor) -> torch.Tensor:
    """Float64 [n, 3]: the fractions of positive, zero and negative entries of each row."""
    return torch.stack([(x > 0).sum(dim=1), (x == 0).sum(dim=1), (x < 0).sum(dim=1)], dim=1).double() / x.shape[1]


def larger_of_two_means(points: torch.Tensor, good: torch.Tensor) -> torch.Tensor:
    """Boolean [n]: the larger cluster of a deterministic 2-means on the ``good`` rows of ``points``.

    Seeds: the coordinate-wise median of the good points (cluster 0) and the good
    point farthest from it (cluster 1; among equally far points, the
    lexicographically largest). A point equally close to both centres, and an
    equal split, go to cluster 0. The result does not depend on the row order.
    """
    rows = points[good]
    centre = rows.median(dim=0).values  # of a few discrete fractions: an exact data value per column
    far = (rows - centre).square().sum(dim=1)
    candidates = rows[far == far.max()]
    # lexicographically largest candidate: sort by each column, last key first (stable sorts)
    for column in reversed(range(candidates.shape[1])):
        candidates = candidates[candidates[:, column].argsort(stable=True, descending=True)]
    centres = torch.stack([centre, candidates[0]])
    labels = torch.zeros(rows.shape[0], dtype=torch.bool, device=rows.device)
    for _ in range(_LLOYD_ITERATIONS):
        dist = (rows[:, None, :] - centres[None, :, :]).square().sum(dim=2)  # [m, 2]
        new = dist[:, 1] < dist[:, 0]
        if bool((new == labels).all()):
            break
        labels = new
        member = torch.stack([~labels, labels]).to(rows.dtype)  # [2, m]
        counts = member.sum(dim=1, keepdim=True)
        centres = torch.where(counts > 0, member @ rows / counts.clamp(min=1), centres)
    larger = labels if int(labels.sum()) * 2 > labels.numel() else ~labels
    out = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    out[good] = larger
    return out
