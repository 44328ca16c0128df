"""Geometric median by smoothed Weiszfeld iterations (Pillutla, Kakade & Harchaoui, 2022, "Robust aggregation for federated learning").

The point minimising the sum of Euclidean distances to the n vectors. Weiszfeld
iterates z <- sum_i w_i x_i with w_i proportional to 1 / max(nu, |z - x_i|); the
iterate is kept as its weights w, and |z - x_j|^2 = sum_i w_i D_ij - w^T D w / 2
is read from the float64 pairwise squared distances D, so each iteration costs
O(n^2), not O(nd) (unless the distances span more than float64 can subtract,
e.g. attackers 1e15 times farther than the honest spread: then it iterates on
the vectors). Vectors at infinite distance from a majority of the
others (non-finite, or overflowing float64) are left out. Requires n >= 2f + 1.

The iteration starts from the mean and stops when it moves by less than tol
times the median distance to the points. ``start=zero`` starts from the zero
vector instead, as ByzFL's GeometricMedian and the bucketing paper's RFA do;
with ``tol=0`` exactly ``max_iter`` iterations run (ByzFL:
``geomed(nu=0.1,max_iter=3,tol=0,start=zero)``).
"""
from __future__ import annotations

import math
from typing import Literal

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances, squared_distances_to, weighted_mean


_RANGE = 1e16  # squared-distance range beyond which the Gram-coefficient iteration loses every digit


@register("geomed")
class GeometricMedian(Rule):
    """Geometric median by smoothed Weiszfeld, iterated on the pairwise-distance matrix (Pillutla et al. 2022)."""

    nu: float = 1e-6
    tol: float = 1e-7
    max_iter: int = 100
    start: Literal["mean", "zero"] = "mean"
    bound = (2, 1)

    def validate(self) -> None:
        self.need(0 <= self.nu < math.inf and 0 <= self.tol < math.inf, "a finite nu >= 0 and a finite tol >= 0")
        self.need(self.max_iter >= 1, "max_iter >= 1")

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
            return weiszfeld_vectors(gradients[usable], self.nu, self.tol, self.max_iter, self.start)
        norms = squared_distances_to(gradients[usable]).sqrt() if self.start == "zero" else None
        weights[usable] = weiszfeld_weights(inner, self.nu, self.tol, self.max_iter, norms)
        return weighted_mean(weights, gradients, torch.isfinite(dist.diagonal()))


def weiszfeld_weights(dist: torch.Tensor, nu: float, tol: float, max_iter: int,
                      from_zero: torch.Tensor | None = None) -> torch.Tensor:
    """Weights w (summing to 1) of the geometric median sum_i w_i x_i, from squared distances.

    Starts from the mean, or from the zero vector when ``from_zero`` holds the
    points' norms (the first iteration then reads its distances from them).

    Stops when the iterate moves by less than ``tol`` times the median distance
    to it: a scale set by the majority, so far-away Byzantine vectors cannot
    make the tolerance huge (with the mean, attackers at distance R stopped the
    iteration about tol * R away from the median).
    """
    n = dist.shape[0]
    weights = torch.full((n,), 1.0 / n, dtype=dist.dtype, device=dist.device)
    for iteration in range(max_iter):
        if iteration == 0 and from_zero is not None:
            to_points = from_zero.to(dist.dtype)
        else:
            to_points = (dist @ weights - weights @ dist @ weights / 2).clamp_(min=0).sqrt_()
        inverse = 1.0 / to_points.clamp(min=nu) if nu > 0 else 1.0 / to_points
        if not bool(torch.isfinite(inverse).all()):  # nu = 0 and the iterate sits on a point
            return (to_points == 0).to(dist.dtype) / (to_points == 0).sum()
        new = inverse / inverse.sum()
        if iteration == 0 and from_zero is not None:  # zero is no combination of the points: no step to measure
            weights = new
            continue
        step = new - weights
        moved = (-(step @ dist @ step) / 2).clamp(min=0).sqrt()
        weights = new
        if bool(moved <= tol * to_points.median()):
            break
    return weights


def weiszfeld_vectors(x: torch.Tensor, nu: float, tol: float, max_iter: int, start: str = "mean") -> torch.Tensor:
    """Smoothed Weiszfeld on the vectors themselves (exact for any spread of distances), same stopping rule."""
    weights = torch.full((x.shape[0],), 1.0 / x.shape[0], dtype=torch.float64, device=x.device)
    z = weighted_mean(weights, x) if start == "mean" else torch.zeros_like(x[0])
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
