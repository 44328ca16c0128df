"""The star: node 0 is the hub, joined to every other node (He et al. 2022's ``Star``). Needs n >= 2.

A Byzantine hub cuts every honest leaf off the others, which a run refuses.
"""
from __future__ import annotations

import torch

from simulator.core.decentralised.topologies import Placed, register


@register("star")
class Star(Placed):
    """Star: vertex 0 is joined to every other vertex"""

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        if n < 2:
            raise self.unfit(f"needs at least 2 nodes, got {n}")
        return [(0, i) for i in range(1, n)]
