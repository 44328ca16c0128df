"""The 2-D torus: a rows x cols grid whose rows and columns wrap around (He et al. 2022's ``TorusGraph``).

The Cartesian product of two rings: every node has degree 4. ``rows`` unset takes
the most square factorisation n = rows x cols; both sides must be at least 3 (a
side of 2 or 1 folds the torus into a ring or a ladder).
"""
from __future__ import annotations

import math

import torch

from simulator.core.decentralised.topologies import Placed, register


@register("torus")
class Torus(Placed):
    """2-D torus: a rows x cols grid wrapping around (degree 4); rows unset: the most square n = rows x cols"""

    rows: int | None = None

    def validate(self) -> None:
        super().validate()
        self.need(self.rows is None or self.rows >= 3, "rows >= 3")

    def shape(self, n: int) -> tuple[int, int]:
        """(rows, cols) with rows x cols = n, both at least 3."""
        if self.rows is not None:
            if n % self.rows or n // self.rows < 3:
                raise self.unfit(f"needs n = {self.rows} x cols with cols >= 3, got n = {n}")
            return self.rows, n // self.rows
        rows = next((r for r in range(math.isqrt(n), 2, -1) if n % r == 0), None)
        if rows is None:
            raise self.unfit(f"needs n = rows x cols with rows, cols >= 3, got n = {n}")
        return rows, n // rows

    def edges(self, n: int, b: int, generator: torch.Generator) -> list[tuple[int, int]]:
        rows, cols = self.shape(n)
        out = []
        for r in range(rows):
            for c in range(cols):
                node = r * cols + c
                out += [(node, r * cols + (c + 1) % cols), (node, ((r + 1) % rows) * cols + c)]
        return out
