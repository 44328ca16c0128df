"""Divide-and-Conquer, DnC (Shejwalkar & Houmansadr, NDSS 2021, "Manipulating the Byzantine").

``niters`` times: draw b random coordinates, centre the n sub-vectors, score
each by its squared projection on the top singular direction, and keep the
n - floor(c f) lowest scores; output the mean of the vectors kept every time.
The top direction comes from the n x n Gram matrix of the centred sub-vectors.
Randomised (seeded by the rule's generator). Requires n >= 2f + 1.
"""
from __future__ import annotations

import math

import torch

from aggregators.base import Rule, register
from aggregators.distances import finite_rows, weighted_mean


@register("dnc")
class DivideAndConquer(Rule):
    """Keep the vectors least aligned with the top singular direction of random coordinate subsets (Shejwalkar & Houmansadr 2021)."""

    randomised = True
    niters: int = 1
    b: int = 10000
    c: float = 1.0
    bound = (2, 1)

    def validate(self) -> None:
        self.need(self.niters >= 1 and self.b >= 1, "niters >= 1 and b >= 1")
        self.need(0 <= self.c < math.inf, "a finite c >= 0")

    def requirement(self, n: int, f: int) -> str | None:
        return super().requirement(n, f) or (None if math.floor(self.c * f) < n else f"floor(c f) < n (c = {self.c})")

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n, d = gradients.shape
        good = finite_rows(gradients)
        votes = torch.zeros(n, dtype=torch.int64, device=gradients.device)
        for _ in range(self.niters):
            votes += dnc_keep(self.random_columns(gradients, self.b), good, n - math.floor(self.c * f))
        # The paper keeps the rows kept in every iteration; when no row was, the rows kept most often.
        kept = good & (votes == votes.max())
        return weighted_mean(kept.to(gradients.dtype) / kept.sum(), gradients, good)


def dnc_keep(sub: torch.Tensor, good: torch.Tensor, keep: int) -> torch.Tensor:
    """Boolean [n]: the ``keep`` rows with the smallest squared projection on the top direction."""
    rows = sub[good].double()
    rows = rows / rows.abs().max().clamp(min=torch.finfo(rows.dtype).tiny)  # scale-free, never overflows
    centred = rows - rows.mean(dim=0)
    values, vectors = torch.linalg.eigh(centred @ centred.T)
    scores = torch.full((sub.shape[0],), math.inf, dtype=torch.float64, device=sub.device)
    scores[good] = values[-1].clamp(min=0) * vectors[:, -1].square()  # (centred_i . v)^2 = s^2 u_i^2
    out = torch.zeros(sub.shape[0], dtype=torch.bool, device=sub.device)
    out[scores.topk(min(keep, sub.shape[0]), largest=False).indices] = True
    return out & good
