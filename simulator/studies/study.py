"""What a reproduction study is: a grid, the paper's reference numbers, and claims checked on our results.

A study is data, kept in ``simulator/studies/papers/``: a grid file
``<name>.toml`` (named grids ``full`` and ``quick``), the paper's numbers as
plain values, its claims, each a small function from the result table to a
`Verdict` (our numbers, the paper's, and holds / does not hold / not
comparable, with one sentence of reason), optionally a comparison table
(our number beside the paper's in every cell the paper reports), and
``<name>.md``: what differs from the paper's setup and what the committed
results show.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aggregators
import attacks
from simulator.report.stats import Summary

__all__ = ["HOLDS", "FAILS", "NOT_COMPARABLE", "Verdict", "Claim", "Study", "Results"]

HOLDS, FAILS, NOT_COMPARABLE = "holds", "does not hold", "not comparable"


@dataclass(frozen=True)
class Verdict:
    """A claim checked on our results: our numbers beside the paper's, a status and why."""

    status: str  # HOLDS, FAILS or NOT_COMPARABLE
    ours: str
    paper: str
    reason: str


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and the function that checks it on a `Results` table."""

    text: str
    check: Callable[["Results"], Verdict]


@dataclass(frozen=True)
class Study:
    """A reproduction study (see the module docstring)."""

    name: str
    title: str
    citation: str
    paper_dataset: str  # the paper's dataset; Fashion-MNIST stands in when it is not found locally
    claims: Sequence[Claim]
    metric: str  # the accuracy the claims and the report use: final, best or last5 (the paper's convention)
    home: Path = Path(__file__).parent / "papers"  # the folder holding <name>.toml and <name>.md
    references: dict[str, Any] = field(default_factory=dict)
    # Our numbers beside the paper's, cell by cell: rows of one table (column -> text), published with the claims.
    comparison: Callable[["Results"], list[dict[str, str]]] | None = None

    def check(self, results: "Results") -> list[Verdict]:
        """Each claim checked on the result table, in order."""
        return [claim.check(results) for claim in self.claims]

    @property
    def grid_file(self) -> Path:
        return self.home / f"{self.name}.toml"

    @property
    def notes_file(self) -> Path:
        return self.home / f"{self.name}.md"


class Results:
    """The result table of a study: one row per group of seeds, looked up by its fields."""

    def __init__(self, summaries: Sequence[Summary], metric: str) -> None:
        self.summaries, self.metric = list(summaries), metric

    def rows(self, **where: Any) -> list[Summary]:
        """The groups matching every ``field=value`` (aggregator and attack by any spec of the same rule)."""
        where = {k: _canonical(k, v) for k, v in where.items()}
        return [s for s in self.summaries if all(_field(s, k) == v for k, v in where.items())]

    def value(self, **where: Any) -> float:
        """The metric's mean over seeds of the one group matching ``where`` (NaN when none or several match)."""
        rows = self.rows(**where)
        return rows[0].mean[self.metric] if len(rows) == 1 else math.nan

    def curve(self, **where: Any) -> tuple[list[int], list[float]]:
        """(evaluation steps, accuracy averaged over seeds) of the one matching group ([], [] otherwise)."""
        rows = self.rows(**where)
        if len(rows) != 1:
            return [], []
        group = rows[0].group
        return [int(s) for s in group.steps], [float(a) for a in group.accuracy.mean(axis=0)]

    def values(self, field_name: str, **where: Any) -> list[Any]:
        """The distinct values of a field among the matching groups, sorted."""
        return sorted({_field(s, field_name) for s in self.rows(**where)}, key=repr)


def _field(summary: Summary, name: str) -> Any:
    return summary.group.identity.get(name)


def _canonical(name: str, value: Any) -> Any:
    """An aggregator or attack spec in the canonical form identities hold; other values as they are."""
    if name == "aggregator":
        return aggregators.get(value).canonical
    if name == "attack":
        return attacks.get(value).canonical
    return value
