"""A run's folder on disk: config, metrics, evaluations, summary, checkpoint.

Every file is written atomically (temporary file in the same folder, then
os.replace), so a run killed at any moment leaves either the old or the new
version of each file, never half of one.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

CONFIG, METRICS, EVALS, SUMMARY, CHECKPOINT = (
    "config.json", "metrics.csv", "evaluations.csv", "summary.json", "checkpoint.pt",
)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write(self.file(CHECKPOINT), buffer.getvalue())

    def load_checkpoint(self) -> dict | None:
        path = self.file(CHECKPOINT)
        if not path.exists():
            return None
        return torch.load(path, map_location="cpu", weights_only=False)

    def is_complete(self) -> bool:
        return self.file(SUMMARY).exists()
