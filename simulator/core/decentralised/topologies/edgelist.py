"""A graph read from a file: one edge per line, two vertex numbers ``i j`` (0 to n - 1), ``#`` comments.

The nodes are the run's n workers: an edge naming a vertex outside 0..n-1 is
refused with its line; vertices no edge names are isolated (an isolated honest
node disconnects the honest subgraph, which a run refuses). A run id hashes the
file's path, not its content: give an edited graph a new name.
"""
from __future__ import annotations

from pathlib import Path

import torch

from experiments.tools import UserException
from simulator.core.decentralised.topologies import Placed, register


@register("edges")
class EdgeList(Placed):
    """Edges from a file, one 'i j' pair of vertex numbers per line (# comments)"""

    file: str = ""

    def validate(self) -> None:
        super().validate()
        self.need(bool(self.file), "file, the path of an edge list (e.g. edges(file=graph.txt))")

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        try:
            lines = Path(self.file).read_text().splitlines()
        except OSError as err:
            raise UserException(f"Topology {self.spec!r}: cannot read {self.file!r} ({err.strerror}).") from None
        out = []
        for number, line in enumerate(lines, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) != 2 or not all(w.lstrip("-").isdigit() for w in words):
                raise UserException(f"Topology {self.spec!r}: line {number} of {self.file!r} is not two vertex "
                                    f"numbers: {line.strip()!r}.")
            i, j = int(words[0]), int(words[1])
            unknown = next((v for v in (i, j) if not 0 <= v < n), None)
            if unknown is not None:
                raise UserException(f"Topology {self.spec!r}: line {number} of {self.file!r} names vertex {unknown}, "
                                    f"but the run has nodes 0..{n - 1}.")
            if i == j:
                raise UserException(f"Topology {self.spec!r}: line {number} of {self.file!r} joins vertex {i} to "
                                    "itself.")
            out.append((i, j))
        return out
