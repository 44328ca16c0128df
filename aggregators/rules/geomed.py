"""Geometric median by smoothed Weiszfeld iterations (Pillutla, Kakade & Harchaoui, 2022, "Robust aggregation for federated learning").

The point minimising the sum of Euclidean distances to the n vectors. Weiszfeld
iterates z <- sum_i w_i x_i with w_i proportional to 1 / max(nu, |z - x_i|); the
iterate is kept as its weights w, and |z - x_j|^2 = sum_i w_i D_ij - w^T D w / 2
is read from the float64 pairwise squared distances D, so each iteration costs
O(n^2), not O(nd) (unless the distances span more than float64 can subtract,
e.g. attackers 1e15 times farther than the honest spread: then it iterates on
the vectors). Vectors at infinite distance from a majority of the
others (non-finite, or overflowing float64) are left out. Requires n >= 2f + 1.
"""
from __future__ import annotations

import math

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances, squared_distances_to, weighted_mean
from experiments.tools import UserException


_RANGE = 1e16  # squared-distance range beyond which the Gram-coefficient iteration loses every digit


@register("geomed")
class GeometricMedian(Rule):
    """Geometric median by smoothed Weiszfeld, iterated on the pairwise-distance matrix (Pillutla et al. 2022)."""

    nu: float = 1e-6
    tol: float = 1e-7
    max_iter: int = 100

    def validate(self) -> None:
        if not (0 <= self.nu < math.inf and 0 <= self.tol < math.inf) or self.max_iter < 1:
            raise UserException(f"geomed needs finite nu >= 0 and tol >= 0, and max_iter >= 1, got {self.spec}.")

    def requirement(self, n: int, f: int) -> str | None:
        return None if n >= 2 * f + 1 else "n >= 2f + 1"

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        dist = squared_distances(gradients)
        # Vectors at infinite distance from a majority (non-finite, or overflowing) are left out.
        usable = torch.isfinite(dist).sum(dim=1) > n / 2
        weights = torch.zeros(n, dtype=torch.float64, device=gradients.device)
        inner = dist[usable][:, usable]
        if bool(inner.max() > _RANGE * inner.median().clamp(min=torch.finfo(inner.dtype).tiny)):
            # Distances spanning more than float64 can subtract exactly (attackers ~1e15x farther than
            # the honest spread): iterate on the vectors themselves, O(n d) per iteration.
            return weiszfeld_vectors(gradients[usable], self.nu, self.tol, self.max_iter)
        weights[usable] = weiszfeld_weights(inner, self.nu, self.tol, self.max_iter)
        return weighted_mean(weights, gradients, torch.isfinite(dist.diagonal()))


def weiszfeld_weights(dist: torch.Tensor, nu: float, tol: float, max_iter: int) -> torch.Tensor:
    """Weights w (summing to 1) of the geometric median sum_i w_i x_i, from squared distances.

    Stops when the iterate moves by less than ``tol`` times the median distance
    to it: a scale set by the majority, so far-away Byzantine vectors cannot
    make the tolerance huge (with the mean, attackers at distance R stopped the
    iteration about tol * R away from the median).
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
        if bool(moved <= tol * to_points.median()):
            break
    return weights


def weiszfeld_vectors(x: torch.Tensor, nu: float, tol: float, max_iter: int) -> torch.Tensor:
    """Smoothed Weiszfeld on the vectors themselves (exact for any spread of distances), same stopping rule."""
    weights = torch.full((x.shape[0],), 1.0 / x.shape[0], dtype=torch.float64, device=x.device)
    z = weighted_mean(weights, x)
    for _ in range(max_iter):
        to_points = squared_distances_to(x, z).sqrt()
        inverse = 1.0 / to_points.clamp(min=nu) if nu > 0 else 1.0 / to_points
        if not bool(torch.isfinite(inverse).all()):  # nu = 0 and the iterate sits on a point
            return x[int((to_points == 0).nonzero()[0])].clone()
        new = weighted_mean(inverse / inverse.sum(), x)
        moved = (new - z).double().norm()
        z = new
        if bool(moved <= tol * to_points.median()):
            break
    return z
