"""Run records: the small files of a finished run, kept in a second folder that can be committed.

A grid's runs can outlive the machine that ran them only if what they produced
travels, and a run folder holds a checkpoint (megabytes) and a per-step log.
A *record* is the part worth keeping: ``config.json``, ``summary.json``,
``evaluations.csv``, and ``metrics.csv`` thinned to the evaluation steps and the
last step (a few kilobytes in all). ``run_grid(..., records=DIR)`` keeps one per finished run in
``DIR/<run id>/`` and, before it starts, copies the records of runs not finished
in its output folder into it, so those runs count as finished there: a long
study is carried from one machine (or sitting) to the next through a git
repository or any copied folder. A restored run reads like any other in a report;
its diagnostics curve has the record's coarser steps.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from experiments.tools import UserException
from simulator.core.config import Config
from simulator.core.metrics import METRIC_COLUMNS
from simulator.core.migrate import refuse_outdated
from simulator.core.store import CONFIG, EVALS, METRICS, SUMMARY, RunFolder, damage, finished, load_result

__all__ = ["KEPT", "save_record", "restore_records", "sync_records"]

KEPT = (CONFIG, EVALS, SUMMARY)  # copied as they are (the summary last); metrics.csv is thinned


def save_record(run: Path, records: Path) -> Path:
    """Write the record of the finished run in folder ``run`` to ``records/<run id>/``; its path."""
    if not finished(run):
        raise UserException(f"Run folder {str(run)!r} holds no finished run ({SUMMARY} missing).")
    result, dest = load_result(run), RunFolder(records / run.name)
    steps = {row["step"] for row in result.evaluations}
    dest.write_csv(METRICS, METRIC_COLUMNS, [row for row in result.metrics[:-1] if row["step"] in steps]
                   + result.metrics[-1:])
    dest.copy_from(run, KEPT)  # a record cut short has no summary, so it is no record
    return dest.path


def _check(record: Path) -> None:
    """`UserException` when the record's files are missing, damaged, or hold another run than its folder names."""
    problem = damage(record)
    if problem is not None:
        raise UserException(f"Run record {str(record)!r}: {problem}; delete the record to run that run again.")
    try:
        run_id = Config.from_dict(RunFolder(record).read_json(CONFIG)).run_id()
    except (json.JSONDecodeError, UserException) as err:
        raise UserException(f"Run record {str(record)!r} cannot be read: {err}") from None
    if run_id != record.name:
        raise UserException(f"Run record {str(record)!r} holds run {run_id}, not the run its folder names "
                            f"(a record made by another byzsim version? see docs/grids.md).")


def restore_records(configs: Iterable[Config], records: Path) -> int:
    """Copy into each config's folder the record of its run, where it has one and the run is unfinished there.

    The record's ``summary.json`` goes in last, so a copy cut short leaves an unfinished run, never a
    finished one without its curves. Returns how many runs were restored.
    """
    restored = 0
    for config in configs:
        record, folder = records / config.run_id(), config.folder()
        if (record / SUMMARY).exists() and not finished(folder):  # a record cut short is refused, not skipped
            _check(record)
            RunFolder(folder).copy_from(record, (METRICS, *KEPT))
            restored += 1
    return restored


def sync_records(configs: Iterable[Config], records: Path) -> int:
    """Restore the records of runs unfinished here, then record the runs finished here without one.

    Returns how many runs were restored.
    """
    configs = list(configs)
    if records.is_dir():
        refuse_outdated(records, {p.name for p in records.iterdir()} - {c.run_id() for c in configs})
    restored = restore_records(configs, records)
    for config in configs:
        if finished(config.folder()) and not finished(records / config.run_id()):
            save_record(config.folder(), records)
    return restored
