"""Aggregator x something matrices, the shape both the heatmaps and the Markdown tables take.

- `attack_grids`: per setting, aggregator x attack, the metric's mean over seeds;
- `axis_grids`: per remaining setting, aggregator x the values of some setting
  fields (the number of attackers, the heterogeneity), each cell the worst
  case over attacks at that value.

Cells with no run are NaN. Rows, columns and settings follow ``order`` (the
grid file's, `simulator.report.order`; by name and value by default).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.report.load import Setting
from simulator.report.order import BY_NAME, Order
from simulator.report.stats import Summary, WorstCase

__all__ = ["F_FIELDS", "Grid", "attack_grids", "axis_grids"]

F_FIELDS = ("nb_real_byz", "nb_decl_byz")


@dataclass(frozen=True)
class Grid:
    """A matrix of accuracies: rows are aggregators, ``setting`` is what all its cells share."""

    setting: Setting
    rows: list[str]
    columns: list[str]
    values: np.ndarray  # [rows, columns]
    attacks: np.ndarray | None = None  # [rows, columns] the worst attack behind each cell, if any


def _fill(cells: dict[tuple[str, str], Any], rows: list[str], columns: list[str]) -> np.ndarray:
    return np.array([[cells.get((r, c), np.nan) for c in columns] for r in rows], dtype=object)


def attack_grids(summaries: Sequence[Summary], metric: str, attacks: list[str],
                 order: Order = BY_NAME) -> list[Grid]:
    """Per setting, aggregator x attack (columns in the order of ``attacks``): the mean of ``metric`` over seeds."""
    grids = []
    for setting in sorted({s.group.setting for s in summaries}, key=order.setting):
        mine = [s for s in summaries if s.group.setting == setting]
        rows = sorted({s.group.aggregator for s in mine}, key=order.aggregator)
        columns = [a for a in attacks if any(s.group.attack == a for s in mine)]
        cells = {(s.group.aggregator, s.group.attack): s.mean[metric] for s in mine}
        grids.append(Grid(setting, rows, columns, _fill(cells, rows, columns).astype(float)))
    return grids


def axis_grids(cases: Sequence[WorstCase], fields: Sequence[str],
               label: Callable[[dict[str, Any]], str], order: Order = BY_NAME) -> list[Grid]:
    """Per setting without ``fields``, aggregator x their values: each cell a worst case over attacks."""
    def split(setting: Setting) -> tuple[Setting, tuple]:
        return (tuple(p for p in setting if p[0] not in fields), tuple(p for p in setting if p[0] in fields))

    grids = []
    for rest in sorted({split(w.setting)[0] for w in cases}, key=order.setting):
        mine = [(split(w.setting)[1], w) for w in cases if split(w.setting)[0] == rest]
        keys = sorted({key for key, _ in mine}, key=order.setting)
        columns = [label(dict(key)) for key in keys]
        rows = sorted({w.aggregator for _, w in mine}, key=order.aggregator)
        values = {(w.aggregator, label(dict(key))): w.value for key, w in mine}
        attacks = {(w.aggregator, label(dict(key))): w.attack for key, w in mine}
        grids.append(Grid(rest, rows, columns, _fill(values, rows, columns).astype(float),
                          _fill(attacks, rows, columns)))
    return grids
