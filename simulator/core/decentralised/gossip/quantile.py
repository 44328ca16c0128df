"""Each node's entries sorted by distance, the node itself first: what the weighted-quantile radii read.

Gaucher et al. 2025's rules (their ``aggregators/robust_gossip.py``) sort a
node's differences by norm, the node's own (zero) difference with its self weight
among them, and read the radius off the cumulative weights. Padding sorts last
with weight 0, so it never moves a cumulative weight.
"""
from __future__ import annotations

import math

import torch

from simulator.core.decentralised.layout import Layout

__all__ = ["sorted_entries"]


def sorted_entries(distances: torch.Tensor, layout: Layout) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per node, over itself (distance 0, weight W_ii) and its entries: the distances sorted ascending [h, D + 1],
    their weights, and the cumulative weights."""
    d = torch.cat([torch.zeros_like(distances[:, :1]),
                   torch.where(layout.valid, distances.nan_to_num(nan=math.inf), math.inf)], dim=1)
    w = torch.cat([layout.self_weight[:, None], layout.weight], dim=1)
    order = d.sort(dim=1, stable=True).indices
    d, w = d.gather(1, order), w.gather(1, order)
    return d, w, w.cumsum(dim=1)
