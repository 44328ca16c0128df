"""An honest ring with Byzantine leaves (He et al. 2022, Fig. 6: their ``MaliciousRing``).

Vertices 0..g-1 are honest and form a ring; each honest vertex i has ``leaves``
Byzantine leaves (vertices g + k g + i, k < leaves), and the Byzantine nodes
left over, b - leaves g of them, hang on vertex 0 as well. With g = 5 and two
leaves the authors run n = 15, b = 10 (every honest node sees 2 Byzantine of 4
neighbours: honest majority everywhere once a node counts itself) and n = 16,
b = 11 (node 0 sees 3 Byzantine of 5: a Byzantine majority there).

``lazy=true`` is the authors' ``normalize``: the weights are made lazier,
W' = (W + (1 - m) I) / (2 - m) with m the smallest diagonal weight of an honest
node, still symmetric and doubly stochastic; it keeps more of each node's own
model and halves, roughly, its Byzantine weight.
"""
from __future__ import annotations

import torch

from simulator.core.decentralised.topologies import Fixed, register


@register("byzantine-ring")
class ByzantineRing(Fixed):
    """Honest ring of n - b nodes, each with `leaves` Byzantine leaves; the other Byzantine nodes on vertex 0"""

    leaves: int = 2
    lazy: bool = False

    def validate(self) -> None:
        self.need(self.leaves >= 0, "leaves >= 0")

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        g = n - b
        if g < 3 or b < self.leaves * g:
            raise self.unfit(f"needs a ring of g = n - b >= 3 honest nodes and b >= leaves g = {self.leaves} g "
                             f"Byzantine ones, got n = {n}, b = {b}")
        ring = [(i, (i + 1) % g) for i in range(g)]
        leaves = [(i, g + k * g + i) for k in range(self.leaves) for i in range(g)]
        return ring + leaves + [(0, v) for v in range(g + self.leaves * g, n)]


    def mixing(self, adjacent: torch.Tensor, byzantine: torch.Tensor) -> torch.Tensor:
        weights = super().mixing(adjacent, byzantine)
        if not self.lazy:
            return weights
        least = weights.diagonal()[~byzantine].min()
        eye = torch.eye(weights.shape[0], dtype=weights.dtype)
        return (weights + (1 - least) * eye) / (2 - least)
