"""Weights & Biases: offline by default, its files in ``<run folder>/wandb/``.

Each row is logged at its step (a metrics row and the evaluation of the same step share one W&B
history row), the configuration is the W&B run's config and the final and best values its summary.
Offline, nothing leaves the machine: ``wandb sync <run folder>/wandb/offline-run-*`` uploads a run
later; ``wandb(mode=online)`` logs live (after ``wandb login``). ``project`` names the W&B project;
W&B's environment variables (``WANDB_ENTITY``...) apply as usual.

A resumed run keeps the W&B run id of its first sitting (read from its files) and adds one offline
folder per sitting, which ``wandb sync`` gathers into that one W&B run. W&B's offline files cannot be
read back, so the steps a killed sitting logged after its last checkpoint are logged again by the
next (the same values, on a CPU).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from simulator.core.config import Config
from simulator.core.loggers import Logger, hyperparameters, outcome, register

FOLDER = "wandb"


def earlier_id(folder: Path) -> str | None:
    """The W&B run id of an earlier sitting whose files are in ``folder`` (``*/run-<id>.wandb``), or None."""
    found = sorted(folder.glob("*/run-*.wandb"), key=lambda path: path.stat().st_mtime)
    return found[-1].stem.removeprefix("run-") if found else None


@register("wandb")
class WandB(Logger):
    """Weights & Biases run, offline in <run>/wandb/ by default (wandb sync uploads it)"""

    requires = "wandb"
    project: str = "byzsim"
    mode: Literal["offline", "online"] = "offline"

    def start(self, config: Config, folder: Path) -> None:
        import wandb  # lazy: an optional dependency

        self.run = wandb.init(
            project=self.project, mode=self.mode, dir=str(folder), name=config.run_id(),
            id=earlier_id(folder / FOLDER), resume="allow", config=hyperparameters(config),
            reinit="create_new",  # a run of its own, beside any the calling program has open
            settings=wandb.Settings(silent=True, console="off"))  # the run's own output stays the program's

    def log(self, step: int, row: dict[str, float]) -> None:
        self.run.log(row, step=step)

    def finish(self, summary: dict | None) -> None:
        if summary is not None:
            self.run.summary.update(outcome(summary))
        self.run.finish(exit_code=0 if summary is not None else 1)
