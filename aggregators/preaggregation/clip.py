"""Static norm clipping: each vector is scaled to norm at most tau, x_i min(1, tau / |x_i|).

The next rule still sees (n, f). A non-finite vector has no direction: its
output row is NaN (the next rule treats it as infinitely far).
"""
from __future__ import annotations

import math

import torch

from aggregators.base import PreAggregation, register
from aggregators.distances import squared_distances_to


@register("clip")
class Clip(PreAggregation):
    """Scale every vector to Euclidean norm at most tau (static clipping)."""

    keeps_rows = True  # each row rescaled in place: the senders stay known
    tau: float = 1.0

    def validate(self) -> None:
        self.need(self.tau > 0, "tau > 0")

    def transform(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        return clip_to(gradients, squared_distances_to(gradients).sqrt(), self.tau)


def clip_to(gradients: torch.Tensor, norms: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """Each row scaled by min(1, threshold / norm); rows with infinite norm become NaN."""
    finite = torch.isfinite(norms)
    scale = torch.where(norms > threshold, threshold / norms, 1.0)  # a zero norm is left as it is, never 0 / 0
    scale = torch.where(finite, scale, math.nan).to(gradients.dtype)
    return gradients * scale[:, None]
