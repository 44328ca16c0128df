"""The complete graph: every node talks to every other (He et al. 2022's ``Complete``).

With Metropolis weights every entry of W is 1/n: one round of plain gossip is
the exact average, the server's step (spectral gap 1).
"""
from __future__ import annotations

import torch

from simulator.core.decentralised.topologies import Placed, register


@register("complete")
class Complete(Placed):
    """Complete graph: every pair of nodes is an edge (W = J/n, spectral gap 1)"""

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
