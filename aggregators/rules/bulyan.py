"""Bulyan (El Mhamdi, Guerraoui & Rouault, ICML 2018, "The hidden vulnerability of distributed learning in Byzantium").

``selection="krum"`` (the paper's): theta = n - 2f vectors are selected by Krum,
one at a time, each round on the vectors not yet selected (with at least one
neighbour in the last rounds); then each coordinate is the mean of the
beta = theta - 2f selected values closest to their median.

``selection="multikrum"`` is the ``bulyan`` of the ByzantineMomentum code
(El Mhamdi, Guerraoui & Rouault, ICLR 2021; their ``aggregators/bulyan.py``),
Bulyan over Multi-Krum: every vector is scored once by the sum of its plain
(not squared) distances to its m = n - f - 2 nearest others; with the vectors
sorted by score, the i-th of theta = n - 2f - 2 selections (i = 0, 1, ...) is
the average of the vectors ranked i to m - 1 (the m - i best once the i best
are set aside, as their loop computes it: its re-scoring after a removal never
runs, so the scores stay those of the first round); then the same
coordinate-wise phase keeps the beta = theta - 2f values closest to the
median. Requires n >= 4f + 3 either way.
"""
from __future__ import annotations

from typing import Literal

import torch

from aggregators.base import Rule, register
from aggregators.coordinatewise import mean_around_median
from aggregators.distances import squared_distances
from aggregators.rules.krum import krum_order


@register("bulyan")
class Bulyan(Rule):
    """Iterated Krum (or Multi-Krum) selection, then a coordinate-wise mean around the median (El Mhamdi et al.)."""

    bound = (4, 3)
    selection: Literal["krum", "multikrum"] = "krum"
    added = ("selection",)  # runs made before it keep their ids

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        dist = squared_distances(gradients)
        if self.selection == "multikrum":
            selected = multikrum_selections(gradients, dist.sqrt(), f)
        else:
            selected = gradients[bulyan_selection(dist, f, n - 2 * f)]
        return mean_around_median(selected, f, spread=2)  # beta = theta - 2f


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


def multikrum_selections(gradients: torch.Tensor, dist: torch.Tensor, f: int) -> torch.Tensor:
    """The n - 2f - 2 Multi-Krum averages of Bulyan over Multi-Krum [n - 2f - 2, d] (see the module docstring).

    Selection i averages the vectors ranked i .. m - 1 by Krum score (m = n - f - 2 neighbours and vectors):
    suffix sums of the m best, divided by their counts.
    """
    n = gradients.shape[0]
    m = n - f - 2
    best = gradients[krum_order(dist, f)[:m]]
    suffix = best.flip(0).cumsum(0).flip(0)  # row i: the sum of rows i .. m - 1
    counts = torch.arange(m, 0, -1, device=gradients.device, dtype=gradients.dtype)
    return (suffix / counts[:, None])[:n - 2 * f - 2]
