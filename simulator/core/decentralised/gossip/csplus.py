"""CS+ robust gossip (Gaucher, Dieuleveut & Hendrikx, "Unified Breakdown Analysis for Byzantine Robust Gossip",
ICML 2025, arXiv 2410.10418; their code's ``cs_plus``, ``CSplus_RG``).

Node i moves to x_i - eta sum_j W_ij clip(x_i - x_j, tau_i), the radius tau_i
chosen so that the entries clipped carry a weight of at least 2 delta_i, twice the
node's Byzantine weight: sorting the node's entries by distance (its own zero
difference and self weight among them), tau_i is the distance at which the
cumulative weight reaches 1 - 2 delta_i (the one before it when it jumps past),
0 when no entry fits below it, and infinite when delta_i = 0. The authors prove
this rule's breakdown point near-optimal (their Section 4). ``eta`` is the
communication step: their aggregation routine's default 1 (their runs take 1 over
the largest eigenvalue of the weighted Laplacian, which a run can set here).
"""
from __future__ import annotations

import math

import torch

from simulator.core.decentralised.gossip import GossipRule, register
from simulator.core.decentralised.gossip.quantile import sorted_entries
from simulator.core.decentralised.layout import Layout


@register("csplus")
class CSPlus(GossipRule):
    """CS+ (Gaucher et al. 2025): clip the entries beyond the 2 delta_i weight quantile of distances"""

    eta: float = 1.0

    def validate(self) -> None:
        self.need(0 < self.eta <= 1, "eta in (0, 1]")

    @property
    def step(self) -> float:
        return self.eta

    def radii(self, distances: torch.Tensor, layout: Layout) -> torch.Tensor:
        d, _, cumulative = sorted_entries(distances, layout)
        delta = layout.delta
        target = cumulative[:, -1] - 2 * delta
        cut = torch.searchsorted(cumulative.contiguous(), target[:, None].contiguous()).squeeze(1)
        at = cut.clamp(max=d.shape[1] - 1)
        before = d.gather(1, (at - 1).clamp(min=0)[:, None]).squeeze(1)
        reached = cumulative.gather(1, at[:, None]).squeeze(1)
        tau = torch.where(reached == target, d.gather(1, at[:, None]).squeeze(1), torch.where(at >= 1, before, 0.0))
        return torch.where((delta == 0) | (cut >= layout.size), math.inf, tau)
