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

__all__ = ["Reproduction", "choose_dataset", "reproduce", "check_claims"]

STAND_IN = "fashionmnist"
CLAIMS_CSV, CLAIMS_MD, COMPARISON_CSV, README = "claims.csv", "claims.md", "comparison.csv", "README.md"
CLAIM_COLUMNS = ("claim", "ours", "paper", "verdict", "reason")


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
    """(dataset, why): the one asked for, else the paper's if found locally, else Fashion-MNIST."""
    if dataset:
        datasets.load_tensors(dataset, False, data_root)  # an unknown or missing one is one line, before any run
        return dataset, "asked for with --dataset"
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
              records: str | Path | None = None, progress: bool = True) -> Reproduction:
    """Run study ``name`` (its quick variant with ``quick``), then report and check its claims once complete."""
    study = get(name)
    used, note = choose_dataset(study, dataset, data_root)
    grid = load_grids(study.grid_file)["quick" if quick else "full"]
    configs = [dataclasses.replace(c, dataset=used, data_root=data_root) for c in grid.configs]
    grid = dataclasses.replace(grid, name=f"{name}-quick" if quick else name, configs=configs)
    out = Path(output) if output else Path("results/runs/studies") / grid.name
    start = time.perf_counter()
    outcome = run_grid(grid, out, jobs=jobs, threads=threads, shard=shard, progress=progress, records=records)
    verdicts = None
    if all(finished(out / c.run_id()) for c in configs):
        runs = {c.run_id() for c in configs}
        results = _results(study, out, runs)
        verdicts = study.check(results)
        comparison = study.comparison(results) if study.comparison else []
        _write_claims(study, verdicts, comparison, out)
        write_report(out, metric=study.metric, runs=runs)
        if publish:
            _publish(study, grid, out, Path(publish), used, note, verdicts, comparison, quick, records)
    return Reproduction(study, grid, out, used, note, outcome, verdicts, time.perf_counter() - start)


def check_claims(study: Study, folder: str | Path) -> list[Verdict]:
    """Each claim of the study checked on every finished run under ``folder`` (e.g. its committed records)."""
    return study.check(_results(study, folder))


def _results(study: Study, folder: str | Path, runs: set[str] | None = None) -> Results:
    """The result table of the finished runs under ``folder`` (those in ``runs``), in the study's convention."""
    return Results(summarise(load(folder, runs=runs)), study.metric)


def _write_claims(study: Study, verdicts: list[Verdict], comparison: list[dict[str, str]], out: Path) -> str:
    """claims.csv, claims.md (with the comparison table), and comparison.csv when the study has one.

    Returns the body of claims.md under its title: the claims table, then the comparison under its heading.
    """
    rows = [(c.text, v.ours, v.paper, v.status, v.reason) for c, v in zip(study.claims, verdicts)]
    atomic_write(out / CLAIMS_CSV, csv_bytes(CLAIM_COLUMNS, [dict(zip(CLAIM_COLUMNS, row)) for row in rows]))
    body = table(CLAIM_COLUMNS, [[*row[:3], f"**{row[3]}**", row[4]] for row in rows]) + "\n"  # the verdict in bold
    if comparison:
        columns = list(comparison[0])
        atomic_write(out / COMPARISON_CSV, csv_bytes(columns, comparison))
        body += f"\n## Beside the paper\n\n{table(columns, [[row[c] for c in columns] for row in comparison])}\n"
    atomic_write(out / CLAIMS_MD, f"# Claims: {study.title} ({study.citation})\n\n{body}".encode())
    return body


def _publish(study: Study, grid: Grid, out: Path, dest: Path, dataset: str, note: str,
             verdicts: list[Verdict], comparison: list[dict[str, str]], quick: bool,
             records: str | Path | None = None) -> None:
    """README.md (claims, comparison, command, dataset, time, machine, version, notes), CSV tables, PNG figures."""
    runs = [config.run_id() for config in grid.configs]
    write_report(out, dest, metric=study.metric, formats=("png",), runs=runs)
    claims = _write_claims(study, verdicts, comparison, dest)
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
