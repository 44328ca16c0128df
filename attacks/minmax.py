"""Min-Max and Min-Sum (Shejwalkar & Houmansadr, NDSS 2021, "Manipulating the
Byzantine: optimizing model poisoning attacks and defenses for federated learning").

Every Byzantine worker sends m = mean + gamma * p, p a perturbation direction
("std": minus the coordinate-wise std, "unit": minus the normalised mean,
"sign": minus the sign of the mean), with gamma the largest value such that

- Min-Max: max_i ||m - x_i|| <= max_{i,j} ||x_i - x_j||, or
- Min-Sum: sum_i ||m - x_i||^2 <= max_i sum_j ||x_i - x_j||^2,

over the honest x_i. The paper finds gamma by bisection; each constraint is a
convex quadratic in gamma that holds at gamma = 0 (the mean lies in the honest
hull), so here gamma is its largest root, computed exactly from the honest
vectors' Gram matrix.
"""
from __future__ import annotations

from typing import Literal

import torch

from attacks.base import AttackContext, GradientAttack, register
from attacks.stats import coordinate_std, deviations

__all__ = ["MinMax", "MinSum", "largest_root", "perturbation"]


class _DistanceBounded(GradientAttack):
    direction: Literal["std", "unit", "sign"] = "std"  # see perturbation()

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        if honest.dtype in (torch.float16, torch.bfloat16):  # dot products of d halves overflow
            return self.forge(honest.float(), f, ctx).to(honest.dtype)
        mean, dev = deviations(honest)
        p = perturbation(self.direction, mean, dev)
        sq_norm = p.dot(p)
        if not sq_norm > 0:
            return mean
        gram = dev @ dev.T
        norms = gram.diagonal()
        pairwise = (norms[:, None] + norms[None, :] - 2 * gram).clamp_(min=0)
        gamma = self.gamma(sq_norm, -(dev @ p), norms, pairwise)
        return mean.add_(p, alpha=float(gamma))

    def gamma(self, a: torch.Tensor, b: torch.Tensor, norms: torch.Tensor,
              pairwise: torch.Tensor) -> torch.Tensor:
        """Largest gamma: ||m - x_i||^2 = a gamma^2 + 2 b_i gamma + norms_i."""
        raise NotImplementedError


@register("minmax")
class MinMax(_DistanceBounded):
    """Min-Max (Shejwalkar & Houmansadr 2021): within the honest max pairwise distance."""

    def gamma(self, a, b, norms, pairwise):
        return largest_root(a, b, norms - pairwise.max()).min()


@register("minsum")
class MinSum(_DistanceBounded):
    """Min-Sum (Shejwalkar & Houmansadr 2021): within the honest max sum of squared distances."""

    def gamma(self, a, b, norms, pairwise):
        h = norms.shape[0]
        return largest_root(h * a, b.sum(), norms.sum() - pairwise.sum(dim=1).max())


def perturbation(direction: str, mean: torch.Tensor, dev: torch.Tensor) -> torch.Tensor:
    """The paper's perturbation vectors: inverse std, inverse unit mean, inverse sign."""
    return _PERTURBATIONS[direction](mean, dev)


def _inverse_unit(mean: torch.Tensor, dev: torch.Tensor) -> torch.Tensor:
    norm = torch.linalg.vector_norm(mean)
    return mean / -norm if norm > 0 else torch.zeros_like(mean)


_PERTURBATIONS = {
    "std": lambda mean, dev: coordinate_std(dev).neg_(),
    "unit": _inverse_unit,
    "sign": lambda mean, dev: mean.sign().neg_(),
}


def largest_root(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Largest gamma >= 0 with a gamma^2 + 2 b gamma + c <= 0, for a > 0 and c <= 0.

    Uses the conjugate form where b > 0 to avoid cancellation.
    """
    c = c.clamp(max=0)
    root = (b * b - a * c).sqrt()
    return torch.where(b > 0, -c / (b + root), (root - b) / a)
