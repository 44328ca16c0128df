"""Communication graphs of decentralised runs: registered plug-ins named by a spec (``ring``, ``torus(rows=4)``).

A topology builds the graph of a run's n nodes, b of them Byzantine
(``nb_real_byz``): its edges, which vertices are Byzantine, and the mixing
matrix (Metropolis-Hastings weights, `simulator.core.decentralised.graph`).
Most topologies take ``byzantine``: where the Byzantine nodes sit, ``random``
(drawn from the run's "topology" stream, the default), ``degree`` (the b
vertices of highest degree, the lowest index first on ties) or a list of
vertices (``ring(byzantine=[0,5])``). A few place them themselves
(``byzantine-bridge``, ``dumbbell``). Random graphs take ``redraw``: a new
graph every round, on the same Byzantine vertices. A topology that cannot
have n nodes and b Byzantine ones says so in one line.

A new topology is one module in this package: a `Topology` subclass (or
`Placed`, for the ``byzantine`` parameter) decorated with ``@register("name")``,
with ``edges(n, b, generator)``.
"""
from __future__ import annotations

from typing import ClassVar

import torch

from experiments.plugin import Plugin
from experiments.registry import Registry
from experiments.tools import UserException
from simulator.core.decentralised.graph import Graph, adjacency, metropolis

__all__ = ["TOPOLOGIES", "Topology", "Placed", "Fixed", "register"]


class Topology(Plugin):
    """A graph of n nodes with b Byzantine ones: ``build(n, b, generator)`` gives its `Graph`."""

    family = "topology"
    redraws: ClassVar[bool] = False  # whether a run draws a new graph every round (random graphs with redraw)

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        """The undirected edges over vertices 0..n-1; `UserException` when the topology cannot have n nodes."""
        raise NotImplementedError

    def place(self, adjacent: torch.Tensor, b: int, generator: torch.Generator) -> torch.Tensor:
        """bool [n]: which vertices are Byzantine."""
        raise NotImplementedError

    def mixing(self, adjacent: torch.Tensor, byzantine: torch.Tensor) -> torch.Tensor:
        """The mixing matrix: Metropolis-Hastings weights unless a topology says otherwise."""
        return metropolis(adjacent)

    def build(self, n: int, b: int, generator: torch.Generator) -> Graph:
        """The run's graph: edges, Byzantine vertices (drawn after the edges), mixing matrix."""
        adjacent = adjacency(n, self.edges(n, b, generator))
        byzantine = self.place(adjacent, b, generator)
        return Graph(adjacent, byzantine, self.mixing(adjacent, byzantine))

    def next_graph(self, graph: Graph, generator: torch.Generator) -> Graph:
        """A new graph on the same vertices, the Byzantine ones where they were."""
        b = int(graph.byzantine.sum())
        adjacent = adjacency(graph.n, self.edges(graph.n, b, generator))
        return Graph(adjacent, graph.byzantine, self.mixing(adjacent, graph.byzantine))

    def unfit(self, why: str) -> UserException:
        """The one-line error of a topology that cannot have the run's nodes."""
        return UserException(f"Topology {self.spec!r} {why}.")


class Placed(Topology):
    """A topology whose Byzantine vertices are chosen by ``byzantine``: random, degree, or a list of vertices."""

    byzantine: list | str = "random"

    def validate(self) -> None:
        if isinstance(self.byzantine, list):
            self.need(all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in self.byzantine)
                      and len(set(self.byzantine)) == len(self.byzantine),
                      "byzantine, a list of distinct vertices (integers from 0)")
        else:
            self.need(self.byzantine in ("random", "degree"), "byzantine = random, degree or a list of vertices")

    def place(self, adjacent: torch.Tensor, b: int, generator: torch.Generator) -> torch.Tensor:
        n = adjacent.shape[0]
        if isinstance(self.byzantine, list):
            if len(self.byzantine) != b:
                raise self.unfit(f"places {len(self.byzantine)} Byzantine nodes, but the run has {b}")
            outside = [v for v in self.byzantine if v >= n]
            if outside:
                raise self.unfit(f"places a Byzantine node on vertex {outside[0]}, but the graph has vertices "
                                 f"0..{n - 1}")
            chosen = torch.tensor(self.byzantine, dtype=torch.long)
        elif self.byzantine == "degree":  # the highest degrees; a stable sort keeps the lowest index first on ties
            chosen = torch.sort(adjacent.sum(dim=1), descending=True, stable=True).indices[:b]
        else:
            chosen = torch.randperm(n, generator=generator)[:b]
        mask = torch.zeros(n, dtype=torch.bool)
        mask[chosen] = True
        return mask


class Fixed(Topology):
    """A topology built around its Byzantine nodes (the papers' bridge, dumbbell, ring with leaves): they are the
    last b vertices."""

    def place(self, adjacent: torch.Tensor, b: int, generator: torch.Generator) -> torch.Tensor:
        mask = torch.zeros(adjacent.shape[0], dtype=torch.bool)
        mask[adjacent.shape[0] - b:] = True
        return mask


TOPOLOGIES: Registry[type[Topology]] = Registry("topology", packages=("simulator.core.decentralised.topologies",))
register = TOPOLOGIES.register
