"""Bulyan (El Mhamdi, Guerraoui & Rouault, ICML 2018, "The hidden vulnerability of distributed learning in Byzantium").

theta = n - 2f vectors are selected by Krum, one at a time, each round on the
vectors not yet selected (with at least one neighbour in the last rounds); then each coordinate is the mean of the
beta = theta - 2f selected values closest to their median. Requires n >= 4f + 3.
"""
from __future__ import annotations

import torch

from aggregators.base import Rule, register
from aggregators.coordinatewise import mean_around_median
from aggregators.distances import squared_distances
from aggregators.rules.krum import krum_order


@register("bulyan")
class Bulyan(Rule):
    """Iterated Krum selection of n-2f vectors, then a coordinate-wise mean around the median (El Mhamdi et al. 2018)."""

    bound = (4, 3)

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        selected = bulyan_selection(squared_distances(gradients), f, n - 2 * f)
        return mean_around_median(gradients[selected], f, spread=2)  # beta = theta - 2f = n - 4f


def bulyan_selection(dist: torch.Tensor, f: int, theta: int) -> torch.Tensor:
    """Indices of ``theta`` vectors picked by Krum, one per round, among those not yet picked."""
    n = dist.shape[0]
    alive = torch.ones(n, dtype=torch.bool, device=dist.device)
    if theta == n:
        return torch.arange(n, device=dist.device)
    picks = []
    for _ in range(theta):
        pick = krum_order(dist, f, alive)[0]
        picks.append(pick)
        alive[pick] = False
    return torch.stack(picks)
