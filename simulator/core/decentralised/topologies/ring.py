"""The ring (cycle): node i talks to i - 1 and i + 1 mod n (He et al. 2022's ``Ring``).

Every node has degree 2, so every Metropolis weight is 1/3 and the eigenvalues of W
are 1/3 + 2/3 cos(2 pi k / n): the spectral gap is 2/3 (1 - cos(2 pi / n)) for n >= 5,
of order 1/n^2, the slowest mixing of the regular graphs. Needs n >= 3.
"""
from __future__ import annotations

import torch

from simulator.core.decentralised.topologies import Placed, register


@register("ring")
class Ring(Placed):
    """Ring: node i is joined to i + 1 mod n (degree 2, spectral gap 2/3 (1 - cos(2 pi / n)))"""

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        if n < 3:
            raise self.unfit(f"needs at least 3 nodes, got {n}")
        return [(i, (i + 1) % n) for i in range(n)]
