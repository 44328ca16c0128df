"""Krum (Blanchard et al., NeurIPS 2017, "Machine learning with adversaries").

Each vector is scored by the sum of squared distances to its n - f - 2 nearest
others; the vector with the lowest score wins. Requires n >= 2f + 3.
Exact ties in score are broken by the score with one more neighbour, so the
choice does not depend on the order of the workers.

Two knobs reach the variants other tools run: ``neighbours="n-f-1"`` scores
with one more neighbour (ByzFL; the ByzantineMomentum code), which needs only
n >= 2f + 1, and ``squared=false`` sums plain distances (ByzantineMomentum).
"""
from __future__ import annotations

import math
from typing import Literal

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances

Neighbours = Literal["n-f-2", "n-f-1"]


class _KrumScored(Rule):
    """What Krum and Multi-Krum share: the neighbour count, the distance, the requirement."""

    neighbours: Neighbours = "n-f-2"
    squared: bool = True

    @property
    def offset(self) -> int:
        """2 for n - f - 2 neighbours, 1 for n - f - 1."""
        return 2 if self.neighbours == "n-f-2" else 1

    def requirement(self, n: int, f: int) -> str | None:
        if self.offset == 2:
            return None if n >= 2 * f + 3 else "n >= 2f + 3"
        return None if n >= 2 * f + 1 else "n >= 2f + 1"

    def order(self, gradients: torch.Tensor, f: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices by score, squared distances) of the vectors."""
        dist = squared_distances(gradients)
        return krum_order(dist if self.squared else dist.sqrt(), f, offset=self.offset), dist


@register("krum")
class Krum(_KrumScored):
    """The vector with the smallest sum of squared distances to its n-f-2 nearest others (Blanchard et al. 2017)."""

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        return gradients[self.order(gradients, f)[0][0]].clone()


def krum_scores(dist: torch.Tensor, f: int, alive: torch.Tensor | None = None,
                extra: int = 0, offset: int = 2) -> torch.Tensor:
    """Sum of the r - f - ``offset`` (+ ``extra``) smallest distances from each vector to the other alive ones.

    ``alive`` marks the vectors still in play (default: all; r of them), as in
    Bulyan's rounds; at least one neighbour is always used. Vectors not alive,
    or non-finite (+inf rows of ``dist``), score +inf; NaN never appears.
    """
    n = dist.shape[0]
    alive = torch.ones(n, dtype=torch.bool, device=dist.device) if alive is None else alive
    k = min(max(int(alive.sum()) - f - offset, 1) + extra, n - 1)
    off = torch.where(alive[None, :], dist, math.inf)
    off.fill_diagonal_(math.inf)
    scores = off.topk(k, dim=1, largest=False).values.sum(dim=1)
    scores[~alive | torch.isinf(dist.diagonal())] = math.inf
    return torch.nan_to_num(scores, nan=math.inf)


def krum_order(dist: torch.Tensor, f: int, alive: torch.Tensor | None = None, offset: int = 2) -> torch.Tensor:
    """Indices sorted by Krum score; exact ties go to the smaller score with one more neighbour."""
    scores = krum_scores(dist, f, alive, offset=offset)
    by_next = krum_scores(dist, f, alive, extra=1, offset=offset).argsort(stable=True)
    return by_next[scores[by_next].argsort(stable=True)]
