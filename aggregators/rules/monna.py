"""MoNNA (Farhadkhani et al., ICML 2023, "Robust collaborative learning with linear gradient overhead").

The mean of the n - f vectors nearest to a trusted worker's vector (itself
included). ``trusted`` is that worker's row index; the caller must place an
honest vector there. Requires n >= 2f + 1 and trusted < n.
"""
from __future__ import annotations

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances_to, weighted_mean


@register("monna")
class MoNNA(Rule):
    """Mean of the n-f nearest neighbours of the trusted worker's vector (Farhadkhani et al. 2023)."""

    trusted: int = 0
    bound = (2, 1)

    def validate(self) -> None:
        self.need(self.trusted >= 0, "trusted >= 0")

    def requirement(self, n: int, f: int) -> str | None:
        return super().requirement(n, f) or (None if self.trusted < n else f"trusted < n (trusted = {self.trusted})")

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        dist = squared_distances_to(gradients, gradients[self.trusted])
        chosen = dist.topk(n - f, largest=False).indices
        weights = torch.zeros(n, dtype=gradients.dtype, device=gradients.device)
        weights[chosen] = 1.0 / (n - f)
        return weighted_mean(weights, gradients, torch.isfinite(dist))
