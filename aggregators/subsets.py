"""What the rules that search the C(n, f) subsets exactly share: their cap and their requirement.

MDA and SMEA choose the best subset of n - f vectors by enumerating the
C(n, f) subsets to leave out, in chunks. Their cost grows with that count, so
each takes ``max_subsets`` and states it, with the count, as part of its
requirement on (n, f).
"""
from __future__ import annotations

import math

from aggregators.base import Rule

__all__ = ["SubsetSearch"]


class SubsetSearch(Rule):
    """A rule that searches every subset of n - f vectors: n >= 2f + 1 and C(n, f) <= max_subsets."""

    max_subsets: int = 2_000_000

    def validate(self) -> None:
        self.need(self.max_subsets >= 1, "max_subsets >= 1")

    def requirement(self, n: int, f: int) -> str | None:
        if n < 2 * f + 1:
            return "n >= 2f + 1"
        count = math.comb(n, f)
        if count > self.max_subsets:
            return (f"C(n, f) <= max_subsets = {self.max_subsets} for its exact search "
                    f"(C({n}, {f}) = {count}; lower f or raise max_subsets)")
        return None
