"""The dumbbell: two honest cliques joined by one edge, Byzantine nodes hanging on both ends of it.

He et al. 2022's ``Dumbbell(q, qb, r)`` (their ``dumbbell.py``, Fig. 4): vertices
0..q-1 and q..2q-1 are two cliques of q honest nodes, the edge (0, 2q-1) joins
them, b/2 Byzantine nodes are joined to vertex 0 and b/2 to vertex 2q-1, and
``random_edges`` = r more edges join a random node of the first clique to a
random node of the second (the authors' default 0). So n = 2 (q + b/2), b even.
The authors give every edge one weight 1 / (q + b/2 + 1 + r); byzsim keeps
Metropolis-Hastings weights, as on every graph.
"""
from __future__ import annotations

import torch

from simulator.core.decentralised.topologies import Fixed, register


@register("dumbbell")
class Dumbbell(Fixed):
    """Two honest cliques joined by one edge, b/2 Byzantine nodes on each of its ends; plus random_edges"""

    random_edges: int = 0

    def validate(self) -> None:
        self.need(self.random_edges >= 0, "random_edges >= 0")

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        q = (n - b) // 2
        if b % 2 or (n - b) % 2 or q < 2:
            raise self.unfit(f"needs n = 2 (q + b/2) with an even b and cliques of q >= 2 nodes, got n = {n}, b = {b}")
        half = b // 2
        out = [(i + shift, j + shift) for shift in (0, q) for i in range(q) for j in range(i + 1, q)]
        out += [(0, 2 * q - 1)] + [(0, 2 * q + i) for i in range(half)]
        out += [(2 * q - 1, 2 * q + half + i) for i in range(half)]
        ends = torch.randint(q, (self.random_edges, 2), generator=generator)
        return out + [(int(i), q + int(j)) for i, j in ends]
