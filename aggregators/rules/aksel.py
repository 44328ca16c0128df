"""Aksel (El Mhamdi, Guerraoui & Rouault, ICLR 2021 code, LPD-EPFL/ByzantineMomentum, `aggregators/aksel.py`).

The mean of the c vectors closest (squared Euclidean distance) to the
coordinate-wise median: c = (n + 1) // 2 with ``mode="mid"`` (the original's
default), c = n - f with ``mode="n-f"``. Requires n >= 2f + 1, as the original
(which also refuses f = 0; here f = 0 is allowed). The median is byzsim's: the
mean of the two middle values for even n, where the original's `torch.median`
takes the lower one (identical for odd n). A vector with a NaN or an infinity is
infinitely far from the median, so it is never among the c closest while at
most f vectors are non-finite (c <= n - f whenever n >= 2f + 1). Vectors tied
exactly at the c-th distance share the places left equally, so the output does
not depend on the order of the rows (the original takes the earlier rows; with
n = 2 and f = 0 both vectors are always tied and ``mid`` gives their mean).
"""
from __future__ import annotations

import math
from typing import Literal

import torch

from aggregators.base import Rule, register
from aggregators.coordinatewise import median
from aggregators.distances import squared_distances_to, weighted_mean


@register("aksel")
class Aksel(Rule):
    """Mean of the (n+1)//2 (or n-f) vectors closest to the coordinate-wise median (ByzantineMomentum's code)."""

    mode: Literal["mid", "n-f"] = "mid"
    bound = (2, 1)

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        c = (n + 1) // 2 if self.mode == "mid" else n - f
        dist = squared_distances_to(gradients, median(gradients, f))
        last = dist.kthvalue(c).values
        closer, tied = dist < last, dist == last
        share = (c - closer.sum()) / tied.sum()  # of the places left to the vectors tied at the c-th distance
        weights = (closer + tied * share).to(gradients.dtype) / c
        return weighted_mean(weights, gradients, dist != math.inf)
