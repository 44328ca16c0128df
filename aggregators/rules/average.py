"""Average: the coordinate-wise mean. Not robust: one Byzantine vector (or one NaN) moves it arbitrarily."""
from __future__ import annotations

import torch

from aggregators.base import Rule, register


@register("average")
class Average(Rule):
    """Mean of all vectors (not robust; breaks on a single Byzantine or non-finite vector)."""

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        return gradients.mean(dim=0)
