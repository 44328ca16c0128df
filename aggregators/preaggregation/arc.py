"""Adaptive robust clipping, ARC (Allouah et al., NeurIPS 2024, "Boosting robustness by clipping gradients in distributed learning").

The k = floor(2 (f/n) (n - f)) vectors with the largest norms are clipped to
the norm of the (k+1)-th largest; the next rule still sees (n, f). Non-finite
vectors count as the largest and become NaN rows.
"""
from __future__ import annotations

import torch

from aggregators.base import PreAggregation, register
from aggregators.distances import squared_distances_to
from aggregators.preaggregation.clip import clip_to


@register("arc")
class AdaptiveRobustClipping(PreAggregation):
    """Clip the floor(2(f/n)(n-f)) largest vectors to the next largest norm (Allouah et al. 2024)."""

    keeps_rows = True  # each row rescaled in place: the senders stay known

    def transform(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        norms = squared_distances_to(gradients).sqrt()
        k = (2 * f * (n - f)) // n
        if k == 0:
            return clip_to(gradients, norms, float("inf"))
        threshold = norms.topk(k + 1).values[-1]
        return clip_to(gradients, norms, threshold.to(norms.dtype))
