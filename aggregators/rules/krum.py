"""Krum (Blanchard et al., NeurIPS 2017, "Machine learning with adversaries").

Each vector is scored by the sum of squared distances to its n - f - 2 nearest
others; the vector with the lowest score wins. Requires n >= 2f + 3.
Exact ties in score are broken by the score with one more neighbour, so the
choice does not depend on the order of the workers.
"""
from __future__ import annotations

import math

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances


@register("krum")
class Krum(Rule):
    """The vector with the smallest sum of squared distances to its n-f-2 nearest others (Blanchard et al. 2017)."""

    def requirement(self, n: int, f: int) -> str | None:
        return None if n >= 2 * f + 3 else "n >= 2f + 3"

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        best = krum_order(squared_distances(gradients), f)[0]
        return gradients[best].clone()


def krum_scores(dist: torch.Tensor, f: int, alive: torch.Tensor | None = None,
                extra: int = 0) -> torch.Tensor:
    """Sum of the r - f - 2 (+ ``extra``) smallest distances from each vector to the other alive ones.

    ``alive`` marks the vectors still in play (default: all; r of them), as in
    Bulyan's rounds; at least one neighbour is always used. Vectors not alive,
    or non-finite (+inf rows of ``dist``), score +inf; NaN never appears.
    """
    n = dist.shape[0]
    alive = torch.ones(n, dtype=torch.bool, device=dist.device) if alive is None else alive
    k = min(max(int(alive.sum()) - f - 2, 1) + extra, n - 1)
    off = torch.where(alive[None, :], dist, math.inf)
    off.fill_diagonal_(math.inf)
    scores = off.topk(k, dim=1, largest=False).values.sum(dim=1)
    scores[~alive | torch.isinf(dist.diagonal())] = math.inf
    return torch.nan_to_num(scores, nan=math.inf)


def krum_order(dist: torch.Tensor, f: int, alive: torch.Tensor | None = None) -> torch.Tensor:
    """Indices sorted by Krum score; exact ties go to the smaller score with one more neighbour."""
    scores = krum_scores(dist, f, alive)
    by_next = krum_scores(dist, f, alive, extra=1).argsort(stable=True)
    return by_next[scores[by_next].argsort(stable=True)]
