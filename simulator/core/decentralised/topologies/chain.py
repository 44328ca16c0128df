"""The chain (path): node i talks to i - 1 and i + 1 (He et al. 2022's ``Chain``). Needs n >= 2.

Any Byzantine node inside the chain cuts the honest nodes in two, which a run refuses:
place them at the ends (``chain(byzantine=[0])``).
"""
from __future__ import annotations

import torch

from simulator.core.decentralised.topologies import Placed, register


@register("chain")
class Chain(Placed):
    """Chain (path): node i is joined to i + 1"""

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        if n < 2:
            raise self.unfit(f"needs at least 2 nodes, got {n}")
        return [(i, i + 1) for i in range(n - 1)]
