"""Two cliques joined through one honest bridge node with b Byzantine neighbours (He et al. 2022, Fig. 5).

The authors' ``TwoCliquesWithByzantine(m, b, delta)`` (their ``optimization_delta.py``
runs ``tcb5,1,delta``): vertices 0..m-1 and m..2m-1 are two cliques of m honest
nodes, vertex 2m is the bridge, joined to vertices 0 and 2m-1, and vertices
2m+1..2m+b are the Byzantine nodes, each joined to the bridge only. So
n = 2m + 1 + b, with b + 2 <= m (then the bridge's weights are Metropolis's). The
Byzantine edges' weights are scaled by ``delta`` in [0, 1] (the authors' default
1: plain Metropolis), the difference kept on the diagonal: delta moves the
bridge's Byzantine weight delta_max = delta b / (b + 3) without changing the
honest nodes' spectral gap.
"""
from __future__ import annotations

import torch

from simulator.core.decentralised.topologies import Fixed, register


@register("byzantine-bridge")
class ByzantineBridge(Fixed):
    """Two cliques of m honest nodes joined through an honest bridge node whose b neighbours are Byzantine"""

    delta: float = 1.0

    def validate(self) -> None:
        self.need(0 <= self.delta <= 1, "delta in [0, 1]")

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        m = (n - 1 - b) // 2
        if (n - 1 - b) % 2 or m < b + 2:
            raise self.unfit(f"needs n = 2 m + 1 + b with cliques of m >= b + 2 nodes, got n = {n}, b = {b}")
        cliques = [(i + shift, j + shift) for shift in (0, m) for i in range(m) for j in range(i + 1, m)]
        return cliques + [(0, 2 * m), (2 * m - 1, 2 * m)] + [(2 * m, 2 * m + 1 + i) for i in range(b)]


    def mixing(self, adjacent: torch.Tensor, byzantine: torch.Tensor) -> torch.Tensor:
        weights = super().mixing(adjacent, byzantine)
        touching = (byzantine[:, None] | byzantine[None, :]) & adjacent
        weights = torch.where(touching, weights * self.delta, weights)
        weights.fill_diagonal_(0.0)
        return weights + torch.diag(1.0 - weights.sum(dim=1))
