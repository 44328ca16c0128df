"""A run's folder on disk: config, metrics, evaluations, summary, checkpoint.

Every file is written through `experiments.atomic.atomic_write` (temporary
sibling, fsync, os.replace, fsync of the folder), so a run killed at any
moment leaves either the old or the new version of each file, never half of one.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from experiments.atomic import atomic_write
from experiments.checkpoint import atomic_save
from experiments.tools import UserException

__all__ = ["CONFIG", "METRICS", "EVALS", "SUMMARY", "CHECKPOINT", "RunFolder", "RunResult", "atomic_write",
           "csv_bytes", "finished", "load_result", "load_runs", "read_csv", "varying"]

CONFIG, METRICS, EVALS, SUMMARY, CHECKPOINT = (
    "config.json", "metrics.csv", "evaluations.csv", "summary.json", "checkpoint.pt",
)


def csv_bytes(columns: Sequence[str], rows: Iterable[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV file written by `csv_bytes`, numbers parsed back; `ValueError` for a row cut short."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if any(None in row or None in row.values() for row in rows):
        raise ValueError("a row is cut short or has more fields than the header")
    return [{k: _number(v) for k, v in row.items()} for row in rows]


def _number(text: str) -> Any:
    if text == "":
        return None  # a value the run did not measure (no validation set, say)
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


class RunFolder:
    """Paths and atomic I/O for one run's folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, data: Any) -> None:
        atomic_write(self.file(name), (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())

    def read_json(self, name: str) -> Any:
        return json.loads(self.file(name).read_text())

    def write_csv(self, name: str, columns: Sequence[str], rows: Iterable[dict]) -> None:
        atomic_write(self.file(name), csv_bytes(columns, rows))

    def save_checkpoint(self, state: dict) -> None:
        atomic_save(state, self.file(CHECKPOINT))

    def load_checkpoint(self) -> dict | None:
        path = self.file(CHECKPOINT)
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # truncated, empty or foreign bytes: torch's zip and unpickling errors
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise UserException(f"{path} is damaged ({first}): delete it to restart the run from step 0.") from None

    def remove_temporaries(self) -> None:
        """Delete what a write killed half-way left (``.NAME.*.tmp``, see `atomic_write`): the run owns its folder."""
        for stale in self.path.glob(".*.tmp"):
            stale.unlink(missing_ok=True)

    def copy_from(self, source: str | Path, names: Iterable[str]) -> None:
        """Copy the named files of ``source`` here in order (the summary last: a copy cut short is unfinished)."""
        for name in names:
            atomic_write(self.file(name), (Path(source) / name).read_bytes())


def finished(folder: str | Path) -> bool:
    """Whether the run in ``folder`` has finished: its summary (written last) is there, and `damage` finds nothing."""
    return (Path(folder) / SUMMARY).exists() and damage(folder) is None


def damage(folder: str | Path) -> str | None:
    """What is wrong with the files of a finished run (e.g. cut short by a full disk), or None when they agree."""
    read = _read(folder)
    return read if isinstance(read, str) else None


def _read(folder: str | Path) -> "RunResult | str":
    """A finished run's files, each read once and checked against the others, or what is wrong with them.

    The summary must be a JSON object naming the steps; the evaluations must end at that step and the
    per-step metrics at the step before it; config.json must be a JSON object.
    """
    store, read = RunFolder(folder), {}
    for name in (SUMMARY, CONFIG, EVALS, METRICS):
        try:
            read[name] = store.read_json(name) if name.endswith(".json") else read_csv(store.file(name))
        except (OSError, ValueError) as err:  # JSONDecodeError is a ValueError
            return f"{name} cannot be read ({getattr(err, 'strerror', None) or err})"
    summary, config, evaluations, metrics = (read[name] for name in (SUMMARY, CONFIG, EVALS, METRICS))
    if not isinstance(summary, dict) or not isinstance(summary.get("steps"), int) or not isinstance(config, dict):
        return f"{SUMMARY} or {CONFIG} is not the JSON object a run writes"
    if not evaluations or evaluations[-1].get("step") != summary["steps"]:
        return f"{EVALS} does not end at the run's last step ({summary['steps']})"
    if summary["steps"] and (not metrics or metrics[-1].get("step") != summary["steps"] - 1):
        return f"{METRICS} does not end at the run's last step"
    return RunResult(summary, evaluations, metrics, store.path, config)


@dataclass
class RunResult:
    """What a run produced: the summary, evaluations and per-step metrics, and its stored config."""

    summary: dict
    evaluations: list[dict]
    metrics: list[dict]
    folder: Path
    config: dict

    @property
    def final_accuracy(self) -> float:
        return self.summary["final_accuracy"]


def load_result(folder: str | Path, *, metrics: bool = True) -> RunResult:
    """Read a finished run's files (``metrics.csv`` only with ``metrics``): the one reader of run folders.

    Damaged files are one `UserException` naming the file and what to do.
    """
    read = _read(folder)
    if isinstance(read, str):
        raise UserException(f"Run folder {str(folder)!r}: {read}; delete {SUMMARY} there and run it again to "
                            f"recompute its files (it resumes from its checkpoint, or restarts without one).")
    return read if metrics else dataclasses.replace(read, metrics=[])


def varying(rows: Sequence[dict], fields: Iterable[str]) -> list[str]:
    """The fields whose value differs between the rows (configs or identities): what tells runs apart."""
    return [k for k in fields if len({json.dumps(row.get(k), sort_keys=True) for row in rows}) > 1]


def load_runs(folder: str | Path) -> Any:
    """One row per finished run at any depth below ``folder``: its run id, config fields and summary's numbers.

    A pandas DataFrame when pandas is installed, else a list of dicts; a missing value is None (NaN in a
    DataFrame), never an empty string. Nested summary entries (data statistics, versions) are left out.
    """
    rows = []
    for summary in sorted(Path(folder).rglob(SUMMARY)):
        result = _read(summary.parent)
        if not isinstance(result, str):
            numbers = {k: v for k, v in result.summary.items() if not isinstance(v, (dict, list))}
            rows.append({"run_id": summary.parent.name, **result.config, **numbers})
    try:
        import pandas  # lazy: an optional dependency
    except ImportError:
        return rows
    return pandas.DataFrame(rows)
