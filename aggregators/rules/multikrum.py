"""Multi-Krum (Blanchard et al., NeurIPS 2017).

The mean of the m vectors with the lowest Krum scores (default m = n - f),
computed as one weight-vector product. Requires n >= 2f + 3 and 1 <= m <= n.
Krum's knobs apply: ``neighbours="n-f-1"`` (ByzFL's MultiKrum) and
``squared=false``; ByzantineMomentum's ``krum`` is
``multikrum(neighbours=n-f-1, squared=false)`` with m = n - f - 2.
"""
from __future__ import annotations

import torch

from aggregators.base import register
from aggregators.distances import weighted_mean
from aggregators.rules.krum import _KrumScored


@register("multikrum")
class MultiKrum(_KrumScored):
    """Mean of the m vectors with the best Krum scores, m = n - f by default (Blanchard et al. 2017)."""

    m: int | None = None

    def validate(self) -> None:
        self.need(self.m is None or self.m >= 1, "m >= 1")

    def requirement(self, n: int, f: int) -> str | None:
        unmet = super().requirement(n, f)
        if unmet is not None:
            return unmet
        return None if self.m is None or self.m <= n else f"m <= n (m = {self.m})"

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        order, dist = self.order(gradients, f)
        chosen = order[:self.m or n - f]
        weights = torch.zeros(n, dtype=gradients.dtype, device=gradients.device)
        weights[chosen] = 1.0 / chosen.numel()
        return weighted_mean(weights, gradients, torch.isfinite(dist.diagonal()))
