"""Geometric median by smoothed Weiszfeld iterations (Pillutla, Kakade & Harchaoui, 2022, "Robust aggregation for federated learning").

The point minimising the sum of Euclidean distances to the n vectors. Weiszfeld
iterates z <- sum_i w_i x_i with w_i proportional to 1 / max(nu, |z - x_i|); the
iterate is kept as its weights w, and |z - x_j|^2 = sum_i w_i D_ij - w^T D w / 2
is read from the float64 pairwise squared distances D, so each iteration costs
O(n^2), not O(nd). Vectors at infinite distance from a majority of the
others (non-finite, or overflowing float64) are left out. Requires n >= 2f + 1.
"""
from __future__ import annotations

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances, weighted_mean
from experiments.tools import UserException


@register("geomed")
class GeometricMedian(Rule):
    """Geometric median by smoothed Weiszfeld, iterated on the pairwise-distance matrix (Pillutla et al. 2022)."""

    nu: float = 1e-6
    tol: float = 1e-7
    max_iter: int = 100

    def validate(self) -> None:
        if self.nu < 0 or self.tol < 0 or self.max_iter < 1:
            raise UserException(f"geomed needs nu >= 0, tol >= 0 and max_iter >= 1, got {self.spec}.")

    def requirement(self, n: int, f: int) -> str | None:
        return None if n >= 2 * f + 1 else "n >= 2f + 1"

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        dist = squared_distances(gradients)
        # Vectors at infinite distance from a majority (non-finite, or overflowing) are left out.
        usable = torch.isfinite(dist).sum(dim=1) > n / 2
        weights = torch.zeros(n, dtype=torch.float64, device=gradients.device)
        weights[usable] = weiszfeld_weights(dist[usable][:, usable], self.nu, self.tol, self.max_iter)
        return weighted_mean(weights, gradients, torch.isfinite(dist.diagonal()))


def weiszfeld_weights(dist: torch.Tensor, nu: float, tol: float, max_iter: int) -> torch.Tensor:
    """Weights w (summing to 1) of the geometric median sum_i w_i x_i, from squared distances.

    Stops when the iterate moves by less than ``tol`` times the mean distance to it.
    """
    n = dist.shape[0]
    weights = torch.full((n,), 1.0 / n, dtype=dist.dtype, device=dist.device)
    for _ in range(max_iter):
        to_points = (dist @ weights - weights @ dist @ weights / 2).clamp_(min=0).sqrt_()
        inverse = 1.0 / to_points.clamp(min=nu) if nu > 0 else 1.0 / to_points
        if not bool(torch.isfinite(inverse).all()):  # nu = 0 and the iterate sits on a point
            return (to_points == 0).to(dist.dtype) / (to_points == 0).sum()
        new = inverse / inverse.sum()
        step = new - weights
        moved = (-(step @ dist @ step) / 2).clamp(min=0).sqrt()
        weights = new
        if bool(moved <= tol * to_points.mean()):
            break
    return weights
