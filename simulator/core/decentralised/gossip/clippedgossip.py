"""ClippedGossip, self-centred clipping (He, Karimireddy & Jaggi, "Byzantine-Robust Decentralized Learning via
ClippedGossip", arXiv 2202.01545, Algorithm 1).

Node i moves to x_i + sum_j W_ij clip(x_j - x_i, tau_i): each neighbour's pull is
clipped to the radius tau_i around the node's own model, so a Byzantine
neighbour moves it by at most W_ij tau_i. The radius:

- ``tau`` given: that fixed radius (the authors' code's ``scp<tau>``; their
  experiments run tau = 1 on MNIST, 0.1 in the honest-majority runs and 10 on
  CIFAR-10, ``run.sh``);
- ``tau`` unset (the default) and ``radius = "second"``: the authors' code's
  adaptive radius (``scp`` with no number, ``SelfCenteredClipping.__call__``): the
  second largest distance from the node to its neighbours' vectors (the largest
  when it has one neighbour), recomputed every round;
- ``radius = "theorem"``: the radius of the paper's analysis, tau_i^2 =
  (1 / delta_i) sum_j W_ij |x_j - x_i|^2 over the honest neighbours, in the form a
  node can compute without knowing who is honest (Gaucher et al. 2025's
  ``CShe_RG``): the sum runs over the closest entries, the node itself
  included, whose weights add up to 1 - delta_i; infinite (no clipping) at a node
  with no Byzantine weight.
"""
from __future__ import annotations

import math
from typing import Literal

import torch

from simulator.core.decentralised.gossip import GossipRule, register
from simulator.core.decentralised.gossip.quantile import sorted_entries
from simulator.core.decentralised.layout import Layout


@register("clippedgossip")
class ClippedGossip(GossipRule):
    """ClippedGossip (He et al. 2022): x_i + sum_j W_ij clip(x_j - x_i, tau); tau unset: adaptive radius"""

    tau: float | None = None
    radius: Literal["second", "theorem"] = "second"

    def validate(self) -> None:
        self.need(self.tau is None or self.tau > 0, "tau > 0 (or unset for the adaptive radius)")

    def radii(self, distances: torch.Tensor, layout: Layout) -> torch.Tensor:
        if self.tau is not None:
            return torch.full((layout.h,), self.tau, dtype=distances.dtype, device=distances.device)
        if self.radius == "second":
            return second_largest(distances, layout)
        return theorem_radius(distances, layout)


def second_largest(distances: torch.Tensor, layout: Layout) -> torch.Tensor:
    """[h]: the second largest of each node's neighbour distances (the largest with one neighbour)."""
    known = torch.where(layout.valid, distances.nan_to_num(nan=math.inf), -math.inf)
    if known.shape[1] < 2:
        return known[:, 0]
    top = known.topk(2, dim=1).values
    return torch.where(layout.valid.sum(dim=1) >= 2, top[:, 1], top[:, 0])


def theorem_radius(distances: torch.Tensor, layout: Layout) -> torch.Tensor:
    """[h]: sqrt(sum of w d^2 over the closest entries whose weights reach 1 - delta, / delta); inf where delta = 0."""
    d, w, cumulative = sorted_entries(distances, layout)
    delta = layout.delta
    total = cumulative[:, -1]
    cut = torch.searchsorted(cumulative.contiguous(), (total - delta)[:, None].contiguous()).squeeze(1)
    kept = torch.arange(d.shape[1], device=d.device)[None, :] < cut[:, None]
    squares = torch.where(kept, w * d.square(), 0.0).sum(dim=1)
    tau = (squares / delta).sqrt()
    tau = torch.where(cut == 0, 0.0, tau)
    return torch.where((delta == 0) | (cut >= layout.size), math.inf, tau)
