"""Two cliques joined by a path (He et al. 2022's ``TwoCliques(n, m)``).

Vertices 0..c-1 and c..2c-1 form two cliques of c nodes; ``between`` = m more
vertices 2c..2c+m-1 form a path from vertex 2c-1 to vertex 0 (with m = 0, the
default, one edge (0, 2c-1) joins the cliques, as in the authors' code). So
n = 2c + m, and n - m must be even. The one path is a bottleneck: the spectral
gap is small, and a Byzantine node on it cuts the honest cliques apart.
"""
from __future__ import annotations

import torch

from simulator.core.decentralised.topologies import Placed, register


@register("twocliques")
class TwoCliques(Placed):
    """Two cliques of (n - between)/2 nodes joined through a path of `between` nodes (0: one edge)"""

    between: int = 0

    def validate(self) -> None:
        super().validate()
        self.need(self.between >= 0, "between >= 0")

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        if (n - self.between) % 2 or n - self.between < 4:
            raise self.unfit(f"needs n = 2 c + {self.between} with cliques of c >= 2 nodes, got n = {n}")
        c = (n - self.between) // 2
        out = [(i + shift, j + shift) for shift in (0, c) for i in range(c) for j in range(i + 1, c)]
        path = [2 * c - 1, *range(2 * c, 2 * c + self.between), 0]
        return out + list(zip(path, path[1:]))
