"""A run's folder on disk: config, metrics, evaluations, summary, checkpoint.

Every file is written through `experiments.atomic.atomic_write` (temporary
sibling, fsync, os.replace, fsync of the folder), so a run killed at any
moment leaves either the old or the new version of each file, never half of one.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from experiments.atomic import atomic_write
from experiments.checkpoint import atomic_save

__all__ = ["CONFIG", "METRICS", "EVALS", "SUMMARY", "CHECKPOINT", "RunFolder", "RunResult", "atomic_write",
           "csv_bytes", "finished", "load_result", "read_csv", "varying"]

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
    """Rows of a CSV file written by `csv_bytes`, numbers parsed back."""
    with open(path, newline="") as handle:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _number(text: str) -> Any:
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
        return torch.load(path, map_location="cpu", weights_only=False)

    def remove_temporaries(self) -> None:
        """Delete what a write killed half-way left (``.NAME.*.tmp``, see `atomic_write`): the run owns its folder."""
        for stale in self.path.glob(".*.tmp"):
            stale.unlink(missing_ok=True)

    def copy_from(self, source: str | Path, names: Iterable[str]) -> None:
        """Copy the named files of ``source`` here in order (the summary last: a copy cut short is unfinished)."""
        for name in names:
            atomic_write(self.file(name), (Path(source) / name).read_bytes())


def finished(folder: str | Path) -> bool:
    """Whether the run in ``folder`` has finished: its summary is written last, so only a finished run has one."""
    return (Path(folder) / SUMMARY).exists()


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
    """Read a finished run's files (``metrics.csv`` only with ``metrics``): the one reader of run folders."""
    store = RunFolder(folder)
    return RunResult(store.read_json(SUMMARY), read_csv(store.file(EVALS)),
                     read_csv(store.file(METRICS)) if metrics else [], store.path, store.read_json(CONFIG))


def varying(rows: Sequence[dict], fields: Iterable[str]) -> list[str]:
    """The fields whose value differs between the rows (configs or identities): what tells runs apart."""
    return [k for k in fields if len({json.dumps(row.get(k), sort_keys=True) for row in rows}) > 1]
