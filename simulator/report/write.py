"""`write_report`: read the runs under a folder, write the tables, the figures and report.md.

Every file, text or figure, is written atomically through
`experiments.atomic.atomic_write`. report.md is written last, so the files it
links to exist whenever it does.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from experiments.tools import UserException
from simulator.report.backdoor import section as backdoor_section
from simulator.report import decentralised
from simulator.report.figures import FORMATS, save_figure
from simulator.report.load import load
from simulator.report.page import render
from simulator.report.plots import plots
from simulator.report.privacy import section as privacy_section
from simulator.report.selection import select as select_values
from simulator.report.stats import METRICS, summarise, worst_cases
from simulator.report.tables import selection_rows, summary_rows, worst_case_rows
from simulator.core.store import atomic_write, csv_bytes

__all__ = ["FIGURES", "REPORT", "SELECTION", "TABLE", "WORST_ASR", "WORST_CASE", "write_report"]

REPORT, TABLE, WORST_CASE, SELECTION = "report.md", "table.csv", "worst_case.csv", "selection.csv"
WORST_ASR = "worst_asr.csv"  # under targeted attacks: each rule's highest ASR over them
FIGURES = "figures"  # sub-folder of the output holding the PNG and PDF files


def write_report(folder: str | Path, output: str | Path | None = None, *, select: str | None = None,
                 metric: str = "final", diagnostics: bool = True,
                 formats: Sequence[str] = FORMATS, runs: Collection[str] | None = None,
                 expansion: Iterable[Mapping[str, Any]] = ()) -> list[Path]:
    """Write report.md, its tables and figures for the finished runs under ``folder``.

    Args:
        folder: searched at any depth for run folders holding ``summary.json``.
        output: where to write (default: ``folder``); figures go to its ``figures/`` sub-folder.
        select: an identity field that varies (``"lr"``, ``"momentum"``...): choose its value per rule and
            setting against the worst attack on the validation set, and write ``selection.csv``.
        metric: what the accuracy tables, heatmaps and worst cases show: ``final``, ``best`` or ``last5``.
        diagnostics: also draw the aggregate's distance from the honest mean per step (reads metrics.csv).
        formats: the figure formats (``png``, ``pdf``); the committed study results keep PNG only.
        runs: run ids (folder names) to read, the others under ``folder`` left out; default all.
        expansion: the identities of the grid's runs in the grid file's order
            (`simulator.grid.order.expansion(folder)`): rules, attacks and setting values are shown in their
            order of first appearance there, those it lacks after them by name; default: by name.

    Returns:
        The paths written, report.md last.
    """
    if metric not in METRICS:
        raise UserException(f"Unknown metric {metric!r}: use one of {', '.join(METRICS)}.")
    design = load(folder, metrics=diagnostics, runs=runs, expansion=expansion)
    choices = select_values(design, select) if select is not None else None
    out = Path(folder if output is None else output)
    summaries = summarise(design)
    cases = worst_cases(summaries, metric, design.order)
    fields = design.setting_fields
    tables = {TABLE: summary_rows(summaries, fields), WORST_CASE: worst_case_rows(cases, fields, metric)}
    asr_cases = worst_cases(summaries, metric, design.order, quantity="asr")
    if asr_cases:
        tables[WORST_ASR] = worst_case_rows(asr_cases, fields, metric)
    if choices is not None:
        tables[SELECTION] = selection_rows(choices, fields, select, design.order)
    if decentralised.rows(design) is not None:  # decentralised runs: the nodes' numbers and the graphs
        tables[decentralised.CSV] = decentralised.rows(design)
    for name, (columns, rows) in tables.items():
        atomic_write(out / name, csv_bytes(columns, rows))
    written = [out / name for name in tables]
    links = []
    for plot in chain(plots(design, summaries, cases, metric, diagnostics=diagnostics), decentralised.plots(design)):
        written += save_figure(plot.figure, out / FIGURES / plot.stem, formats)
        links.append((f"{FIGURES}/{plot.stem}", plot.caption))
    page = render(design, summaries, cases, metric, figures=links, choices=choices, field=select, formats=formats,
                  backdoor=backdoor_section(summaries, asr_cases, metric, design.order),
                  privacy=privacy_section(summaries, metric, design.order),
                  decentralised=decentralised.section(design))
    atomic_write(out / REPORT, page.encode())
    return [*written, out / REPORT]
