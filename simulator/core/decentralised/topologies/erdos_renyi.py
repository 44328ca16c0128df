"""Erdos-Renyi G(n, p): every pair of nodes is an edge with probability p, independently.

Gaucher, Dieuleveut & Hendrikx 2025 ("Unified Breakdown Analysis for Byzantine
Robust Gossip", arXiv 2410.10418) sweep p from 0.26 to 1 on 20 honest nodes
(their ``reproduce_mnist1.py``): there is no one default, so p must be given. The
edges come from the run's "topology" stream; a draw whose honest subgraph is
disconnected is refused (another seed or a larger p). With ``redraw=true`` every
round draws a new graph on the same Byzantine vertices, again until its honest
subgraph is connected.
"""
from __future__ import annotations

import torch

from simulator.core.decentralised.topologies import Placed, register


@register("erdos-renyi")
class ErdosRenyi(Placed):
    """Erdos-Renyi G(n, p): each pair is an edge with probability p; redraw: a new graph every round"""

    p: float | None = None
    redraw: bool = False

    def validate(self) -> None:
        super().validate()
        self.need(self.p is not None and 0 < self.p <= 1, "p in (0, 1] (e.g. erdos-renyi(p=0.5))")

    @property
    def redraws(self) -> bool:
        return self.redraw

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        upper = torch.triu(torch.rand(n, n, generator=generator, dtype=torch.float64) < self.p, diagonal=1)
        return [tuple(pair) for pair in upper.nonzero().tolist()]
