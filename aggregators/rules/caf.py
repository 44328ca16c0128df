"""Covariance-bound Agnostic Filter, CAF (Allouah, Guerraoui & Stephan, ICML 2025, "Towards trustworthy
federated learning with untrusted participants", Algorithm 2; ByzFL's ``CAF``).

Weights c_i start at 1. While sum_i c_i > n - 2f: mu_c = sum_i c_i x_i / sum_i c_i;
(lambda, v) = the largest eigenvalue and its eigenvector of the weighted covariance
Sigma_c = sum_i c_i (x_i - mu_c)(x_i - mu_c)^T / sum_i c_i; tau_i = ((x_i - mu_c).v)^2;
c_i <- c_i (1 - tau_i / max_j tau_j). The result is the mu_c of the pass with the
smallest lambda (the first one on ties). Requires n >= 2f + 1.

Everything is read off one [n, n] matrix: the covariance shares its non-zero
eigenvalues with M = W^1/2 K W^1/2 / sum c, K = P G P^T the Gram matrix of the
centred vectors (P = I - 1 c^T / sum c), and K = -1/2 P D P^T from the pairwise
squared distances D (`squared_distances`, exact on near-identical vectors). With
M u = lambda u, the projections are (x_i - mu_c).v = (K W^1/2 u)_i / sqrt(lambda sum c).
So a pass costs one n x n `torch.linalg.eigh`, and the whole rule one O(n^2 d)
distance pass and one weighted mean, whatever the number of passes.

As in ByzFL, max_j tau_j runs over every row, those already at weight 0 too, and
only the weights at the start of each pass are evaluated (not the ones the last
pass leaves). A removed outlier may then keep setting the scale, so that a pass
barely lowers the weights: ByzFL's loop needs 1,295 passes on the rows 1, 2, 4,
..., 64 with f = 3, and runs on and on for some vectors on a line. byzsim stops
after ``max_iter`` passes (10,000: a cost guard, not from the paper or ByzFL;
at a few tenths of a millisecond a pass for n <= 25) or once lambda is 0 (the
weighted rows coincide: no pass can do better). On spread-out vectors the loop
ends after a few passes (2 to 5 at n = 25, f = 5, d = 1000 under ALIE, sign
flipping or far outliers).

ByzFL takes as lambda the norm of Sigma_c v0 for one random unit vector v0 (one
power-method step), exact only when d = 1; here lambda and v are exact, so the
two agree for d = 1 (to 3e-16 on 37 random problems, `byzfl==0.0.11`) and may
differ otherwise. With f = 0 the loop does not run and the result is the mean
(ByzFL returns nothing). A non-finite vector starts at weight 0, and so does a
vector whose distances overflow float64 (`measurable_rows`): it is infinitely
far along every direction, so the filter's first pass would remove it.
"""
from __future__ import annotations

import math

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances, weighted_mean


@register("caf")
class CovarianceBoundAgnosticFilter(Rule):
    """Filter along the weighted covariance's top eigenvector; the mean of least spread (Allouah et al. 2025)."""

    bound = (2, 1)
    max_iter: int = 10_000

    def validate(self) -> None:
        self.need(self.max_iter >= 1, "max_iter >= 1")

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        dist = squared_distances(gradients)
        weights = caf_weights(dist, f, self.max_iter)
        return weighted_mean(weights, gradients, torch.isfinite(dist.diagonal()))


def caf_weights(dist: torch.Tensor, f: int, max_iter: int) -> torch.Tensor:
    """[n] weights (summing to 1) of the mean CAF returns, from the [n, n] squared distances."""
    n = dist.shape[0]
    good = measurable_rows(dist)
    weights = good.to(dist.dtype)
    finite = dist.masked_fill(~(good[:, None] & good[None, :]), 0.0)
    best, best_value = weights, math.inf
    for _ in range(max_iter):
        total = weights.sum()
        if not float(total) > n - 2 * f:
            break
        value, tau = top_direction(finite, weights)
        if value < best_value:
            best, best_value = weights, value
        if not value > 0:
            break
        tau = tau.masked_fill(~good, 0.0)
        weights = weights * (1 - tau / tau.max())
    return best / best.sum()


def measurable_rows(dist: torch.Tensor) -> torch.Tensor:
    """Boolean [n]: rows at a finite distance from every other row kept.

    A non-finite vector is infinitely far from all; a finite one so large that its distances overflow
    float64 is infinitely far from the others: the row with the most infinite distances goes first.
    """
    good = torch.isfinite(dist.diagonal())
    far = ~torch.isfinite(dist) & good[:, None] & good[None, :]
    while bool(far.any()):
        worst = int(far.sum(dim=1).argmax())
        good[worst] = False
        far[worst, :] = far[:, worst] = False
    return good


def top_direction(dist: torch.Tensor, weights: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(largest eigenvalue of the weighted covariance, [n] squared projections of x_i - mu_c on its eigenvector).

    K = -1/2 P D P^T, P = I - 1 c^T / C; written out, P D P^T = D - 1 a^T - a 1^T + (c.a / C) 1 1^T, a = D c / C.
    """
    total = weights.sum()
    a = dist @ weights / total
    gram = -0.5 * (dist - a[:, None] - a[None, :] + weights.dot(a) / total)  # Gram matrix of the x_i - mu_c
    root = weights.sqrt()
    values, vectors = torch.linalg.eigh(root[:, None] * gram * root[None, :] / total)
    value = float(values[-1])
    if not value > 0:
        return max(value, 0.0), torch.zeros_like(weights)
    projections = gram @ (root * vectors[:, -1]) / math.sqrt(value * float(total))
    return value, projections.square()
