"""Multi-Krum (Blanchard et al., NeurIPS 2017).

The mean of the m vectors with the lowest Krum scores (default m = n - f),
computed as one weight-vector product. Requires n >= 2f + 3 and 1 <= m <= n.
"""
from __future__ import annotations

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances, weighted_mean
from aggregators.rules.krum import krum_order
from experiments.tools import UserException


@register("multikrum")
class MultiKrum(Rule):
    """Mean of the m vectors with the best Krum scores, m = n - f by default (Blanchard et al. 2017)."""

    m: int | None = None

    def validate(self) -> None:
        if self.m is not None and self.m < 1:
            raise UserException(f"multikrum needs m >= 1, got m = {self.m}.")

    def requirement(self, n: int, f: int) -> str | None:
        if n < 2 * f + 3:
            return "n >= 2f + 3"
        return None if self.m is None or self.m <= n else f"m <= n (m = {self.m})"

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        dist = squared_distances(gradients)
        chosen = krum_order(dist, f)[:self.m or n - f]
        weights = torch.zeros(n, dtype=gradients.dtype, device=gradients.device)
        weights[chosen] = 1.0 / chosen.numel()
        return weighted_mean(weights, gradients, torch.isfinite(dist.diagonal()))
