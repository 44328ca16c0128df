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
from pathlib import Path
from typing import Any

import torch

from experiments.atomic import atomic_write
from experiments.checkpoint import atomic_save

__all__ = ["CONFIG", "METRICS", "EVALS", "SUMMARY", "CHECKPOINT", "RunFolder", "atomic_write", "csv_bytes",
           "read_csv"]

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

    def is_complete(self) -> bool:
        return self.file(SUMMARY).exists()
