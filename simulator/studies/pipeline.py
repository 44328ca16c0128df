"""`reproduce(name)`: run a study's grid, write its report and its claims table.

The grid runs on the paper's dataset when it is found locally, otherwise on
Fashion-MNIST (Debian's dataset-fashion-mnist); the claims are checked on the
finished runs' result table. ``publish`` writes the small files worth
committing (README.md with the claims table, the CSV tables, PNG figures) to a
second folder, e.g. ``results/<study>/``; ``records`` keeps a record of each
finished run (e.g. in ``results/<study>/runs/``) from which a study too long
for one machine's sitting resumes on the next (`simulator.grid.records`).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from experiments import datasets
from experiments.atomic import atomic_write
from experiments.tools import UserException
from simulator.grid import Grid, GridOutcome, load_grids, run_grid
from simulator.core.provenance import made_with
from simulator.report import load, summarise, write_report
from simulator.report.page import table
from simulator.core.store import csv_bytes, finished, load_result
from simulator.studies.catalogue import get
from simulator.studies.study import Results, Study, Verdict

__all__ = ["Reproduction", "choose_dataset", "reproduce", "check_claims", "claims_table", "claim_columns"]

STAND_IN = "fashionmnist"
CLAIMS_CSV, CLAIMS_MD, COMPARISON_CSV, README = "claims.csv", "claims.md", "comparison.csv", "README.md"


@dataclass
class Reproduction:
    """What `reproduce` did: the grid's outcome, the dataset used and why, the verdicts (None until finished)."""

    study: Study
    grid: Grid
    output: Path
    dataset: str
    dataset_note: str
    outcome: GridOutcome
    verdicts: list[Verdict] | None
    seconds: float


def choose_dataset(study: Study, dataset: str | None, data_root: str | None) -> tuple[str, str]:
    """(dataset, why): the one asked for, else the one the study's grid is made for (`Study.runs_on`), else the
    paper's if found locally, else Fashion-MNIST."""
    if dataset:  # a spec (``fashionmnist(flip=true)``): unknown, mistyped or missing is one line, before any run
        datasets.load_tensors(datasets.parse(dataset).name, False, data_root)
        return dataset, "asked for with --dataset"
    if study.runs_on:
        datasets.load_tensors(datasets.parse(study.runs_on).name, False, data_root)
        return study.runs_on, (f"the study's grid is made for it; it stands in for the paper's "
                               f"{study.paper_dataset}, which that grid cannot run")
    for name, why in ((study.paper_dataset, "the paper's dataset, found locally"),
                      (STAND_IN, f"the paper's {study.paper_dataset} was not found locally (--data-root); "
                                 "Fashion-MNIST stands in")):
        try:
            datasets.load_tensors(name, False, data_root)
        except UserException:
            continue
        return name, why
    raise UserException(f"Neither {study.paper_dataset} nor Fashion-MNIST is available: pass --data-root, or "
                        f"install Debian's dataset-fashion-mnist.")


def reproduce(name: str, *, quick: bool = False, dataset: str | None = None, data_root: str | None = None,
              jobs: int = 1, threads: int | None = None, shard: tuple[int, int] | None = None,
              output: str | Path | None = None, publish: str | Path | None = None,
              records: str | Path | None = None, progress: bool = True,
              loggers: str | Sequence[str] = ()) -> Reproduction:
    """Run study ``name`` (its quick variant with ``quick``), then report and check its claims once complete.

    ``loggers``: trackers that also record each run (`simulator.core.loggers`), as for a grid.
    """
    study = get(name)
    used, note = choose_dataset(study, dataset, data_root)
    grid = load_grids(study.grid_file)["quick" if quick else "full"]
    configs = [dataclasses.replace(c, dataset=used, data_root=data_root) for c in grid.configs]
    grid = dataclasses.replace(grid, name=f"{name}-quick" if quick else name, configs=configs)
    out = Path(output) if output else Path("results/runs/studies") / grid.name
    start = time.perf_counter()
    outcome = run_grid(grid, out, jobs=jobs, threads=threads, shard=shard, progress=progress, records=records,
                       loggers=loggers)
    verdicts = None
    if all(finished(out / c.run_id()) for c in configs):
        runs = {c.run_id() for c in configs}
        results = _results(study, out, runs)
        verdicts = study.check(results)
        rows = _claim_rows(study, results, verdicts)
        comparison = study.comparison(results) if study.comparison else []
        _write_claims(study, rows, comparison, out, smoke=quick)
        write_report(out, metric=study.metric, runs=runs)
        if publish:
            _publish(study, grid, out, Path(publish), used, note, rows, comparison, quick, records)
    return Reproduction(study, grid, out, used, note, outcome, verdicts, time.perf_counter() - start)


def check_claims(study: Study, folder: str | Path) -> list[Verdict]:
    """Each claim of the study checked on every finished run under ``folder`` (e.g. its committed records)."""
    return study.check(_results(study, folder))


def claims_table(study: Study, folder: str | Path) -> list[dict[str, str]]:
    """The rows of claims.csv for every finished run under ``folder``: what `reproduce` publishes."""
    results = _results(study, folder)
    return _claim_rows(study, results, study.check(results))


def claim_columns(study: Study) -> list[str]:
    """claims.csv's columns: the claim and its source, our numbers and verdict on the study's accuracy, the same
    on each accuracy shown beside it (`Study.beside`), the paper's numbers and the reason."""
    return ["claim", "source", f"ours ({study.metric})", "verdict",
            *[c for m in study.beside for c in (f"ours ({m})", f"verdict ({m})")], "paper", "reason"]


def _results(study: Study, folder: str | Path, runs: set[str] | None = None) -> Results:
    """The result table of the finished runs under ``folder`` (those in ``runs``), in the study's convention."""
    return Results(summarise(load(folder, runs=runs)), study.metric)


def _claim_rows(study: Study, results: Results, verdicts: list[Verdict]) -> list[dict[str, str]]:
    """One row of `claim_columns` per claim: its verdict, and the claim checked again on each accuracy beside."""
    rows = []
    for claim, verdict, beside in zip(study.claims, verdicts, study.check_beside(results)):
        row = {"claim": claim.text, "source": claim.source, f"ours ({study.metric})": verdict.ours,
               "verdict": verdict.status}
        for metric, again in beside.items():
            row |= {f"ours ({metric})": again.ours, f"verdict ({metric})": again.status}
        rows.append(row | {"paper": verdict.paper, "reason": verdict.reason})
    return rows


SMOKE = ("Smoke test: the quick variant (one seed, fewer steps, part of the grid) checks that the study runs "
         "end to end; its verdicts are not the study's and say nothing of the paper's claims.")


def _write_claims(study: Study, rows: list[dict[str, str]], comparison: list[dict[str, str]], out: Path,
                  smoke: bool = False) -> str:
    """claims.csv, claims.md (with the comparison table), and comparison.csv when the study has one.

    ``smoke``: the quick variant's, whose claims.md opens with `SMOKE`.

    Returns the body of claims.md under its title: the claims table (numbered, each verdict in bold, the
    accuracies beside the study's in their own columns), the paper's words for each claim, then the comparison
    under its heading.
    """
    columns = claim_columns(study)
    atomic_write(out / CLAIMS_CSV, csv_bytes(columns, rows))
    shown = ["#", "claim", f"ours ({study.metric})", "verdict", *[f"ours ({m})" for m in study.beside],
             "paper", "reason"]
    cells = [[str(i), row["claim"], row[f"ours ({study.metric})"], f"**{row['verdict']}**",
              *[_beside(row, m, study.metric) for m in study.beside], row["paper"], row["reason"]]
             for i, row in enumerate(rows, 1)]
    body = table(shown, cells) + "\n"
    sources = [f"{i}. {row['source']}" for i, row in enumerate(rows, 1) if row["source"]]
    if sources:
        body += "\nWhat the paper says, claim by claim:\n\n" + "\n".join(sources) + "\n"
    if comparison:
        columns = list(comparison[0])
        atomic_write(out / COMPARISON_CSV, csv_bytes(columns, comparison))
        body += f"\n## Beside the paper\n\n{table(columns, [[row[c] for c in columns] for row in comparison])}\n"
    title = f"# {'Smoke test of the claims' if smoke else 'Claims'}: {study.title} ({study.citation})\n\n"
    atomic_write(out / CLAIMS_MD, (title + (f"**{SMOKE}**\n\n" if smoke else "") + body).encode())
    return body


def _beside(row: dict[str, str], metric: str, own: str) -> str:
    """A claim's numbers on another accuracy and its verdict there ('the same' where neither changes)."""
    ours = row[f"ours ({metric})"]
    if ours == row[f"ours ({own})"] and row[f"verdict ({metric})"] == row["verdict"]:
        return f"the same as on the {own} accuracy"
    return f"{ours} (**{row[f'verdict ({metric})']}**)"


def _publish(study: Study, grid: Grid, out: Path, dest: Path, dataset: str, note: str,
             rows: list[dict[str, str]], comparison: list[dict[str, str]], quick: bool,
             records: str | Path | None = None) -> None:
    """README.md (claims, comparison, command, dataset, time, machine, version, notes), CSV tables, PNG figures."""
    runs = [config.run_id() for config in grid.configs]
    write_report(out, dest, metric=study.metric, formats=("png",), runs=runs)
    claims = _write_claims(study, rows, comparison, dest, smoke=quick)
    summaries = [load_result(out / run, metrics=False).summary for run in runs]  # the grid's, not others in out
    hours = sum(float(s["wall_time"]) for s in summaries) / 3600
    made = made_with(summaries)
    command = (f"byzsim reproduce {study.name}{' --quick' if quick else ''} --jobs 2 "
               f"{f'--records {records} ' if records else ''}--publish {dest}")
    notes = study.notes_file
    parts = [f"# Reproduction: {study.title}", "", f"{study.citation}.", "",
             "## Claims", "", claims, "## How this was made", "",
             f"- Command: `{command}` ({len(grid.configs)} runs; the grid is "
             f"`{study.grid_file.relative_to(Path(__file__).parents[2])}`).",
             f"- Dataset: {dataset} ({note}).",
             f"- Training time: {hours:.1f} hours of runs (the sum of their wall times) on {made['machine']}.",
             f"- Versions: {made['versions']}.",
             f"- Accuracy reported: `{study.metric}` (see docs/grids.md); the full report is "
             f"[report.md](report.md).", ""]
    if notes.exists():
        parts += [notes.read_text().strip(), ""]
    atomic_write(dest / README, "\n".join(parts).encode())
