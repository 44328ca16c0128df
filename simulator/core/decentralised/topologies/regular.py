"""A random k-regular graph: every node has exactly k neighbours, the graph drawn uniformly-ish at random.

Drawn by the pairing model (Bollobas 1980): each node holds k stubs, stubs are
paired one at a time with a random stub that makes neither a loop nor a second
edge between the same nodes, and the draw restarts when none is left. Needs
n k even and k < n. No paper of this project's sources fixes k, so it must be
given. ``redraw=true`` draws a new graph every round (same Byzantine vertices).
"""
from __future__ import annotations

import torch

from simulator.core.decentralised.topologies import Placed, register

_RESTARTS = 1000


@register("regular")
class Regular(Placed):
    """Random k-regular graph (pairing model); redraw: a new graph every round"""

    k: int | None = None
    redraw: bool = False

    def validate(self) -> None:
        super().validate()
        self.need(self.k is not None and self.k >= 1, "k >= 1 (e.g. regular(k=4))")

    @property
    def redraws(self) -> bool:
        return self.redraw

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        if self.k >= n or (n * self.k) % 2:
            raise self.unfit(f"needs k < n and n k even, got n = {n}")
        for _ in range(_RESTARTS):
            found = _pairing(n, self.k, generator)
            if found is not None:
                return found
        raise self.unfit(f"found no {self.k}-regular graph on {n} nodes in {_RESTARTS} draws")


def _pairing(n: int, k: int, generator: torch.Generator) -> list[tuple[int, int]] | None:
    """One draw of the pairing model; None when it gets stuck."""
    stubs = torch.arange(n).repeat_interleave(k)[torch.randperm(n * k, generator=generator)].tolist()
    edges: set[tuple[int, int]] = set()
    while stubs:
        u = stubs.pop()
        allowed = [i for i, v in enumerate(stubs) if v != u and (min(u, v), max(u, v)) not in edges]
        if not allowed:
            return None
        v = stubs.pop(allowed[int(torch.randint(len(allowed), (1,), generator=generator))])
        edges.add((min(u, v), max(u, v)))
    return sorted(edges)
