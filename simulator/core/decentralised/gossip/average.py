"""Plain gossip averaging: x_i <- sum_j W_ij x_j over the node and its neighbours (the baseline, no robustness).

Decentralised SGD's mixing step (Lian et al., NeurIPS 2017; He et al. 2022's
``gossip_avg``): no radius, so one Byzantine neighbour moves a node anywhere. On
the complete graph with Metropolis weights it is the exact average, the server's
step.
"""
from __future__ import annotations

import math

import torch

from simulator.core.decentralised.gossip import GossipRule, register
from simulator.core.decentralised.layout import Layout


@register("gossip")
class Gossip(GossipRule):
    """Plain gossip averaging with the mixing weights, sum_j W_ij x_j (not robust)"""

    clips = False

    def radii(self, distances: torch.Tensor, layout: Layout) -> torch.Tensor:
        return torch.full((layout.h,), math.inf, dtype=distances.dtype, device=distances.device)
