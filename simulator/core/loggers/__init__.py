"""Experiment trackers a run can also write to: TensorBoard, Weights & Biases, MLflow. Off by default.

The run folder's CSV files stay the record of a run; a logger copies the same rows, under the same
names, to a tracker's store as they are made, and the configuration and the final and best accuracies
when the run ends. Loggers are asked for by name (``byzsim train --log tensorboard,wandb``,
``run(config, loggers=["mlflow"])``) and never change a run's results or its id: they are no
configuration field.

A logger is a `Logger` plug-in (parameters in a spec: ``wandb(mode=online)``) with three calls:
``start(config, folder)``, ``log(step, row)`` per metrics or evaluation row, and ``finish(summary)``,
whose summary is None when the run stopped before its end (interrupted, failed). Each needs its own
package, an optional extra of byzsim, imported only when the logger is used. A new tracker is one
module in this package: a `Logger` subclass decorated with ``@register("name")``.

Resuming: a run logs from the step it resumes at. A run killed after its last checkpoint (not one
stopped by Ctrl-C, which checkpoints where it stops) computes its last steps again when it resumes; a
logger whose store can be read back (`Logger.held`: TensorBoard, MLflow) skips the steps it already
holds, so each step is logged once.
"""
from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from experiments.grammar import split_top
from experiments.plugin import Plugin
from experiments.registry import Registry
from experiments.tools import UserException
from simulator.core.config import Config

__all__ = ["LOGGERS", "LogBook", "Logger", "build_loggers", "hyperparameters", "outcome", "parse_loggers",
           "register"]

_LOG = logging.getLogger(__name__)


class Logger(Plugin):
    """Copies a run's rows to an experiment tracker; see the module docstring."""

    family = "logger"
    requires: ClassVar[str] = ""  # the package it imports, checked before a run starts
    extra: ClassVar[str] = ""  # byzsim's optional extra that installs it

    @classmethod
    def check(cls) -> None:
        """`UserException` in one line when the logger's package is not installed."""
        if cls.requires and importlib.util.find_spec(cls.requires) is None:
            raise UserException(f"--log {cls.name} needs the {cls.requires} package: "
                                f"pip install 'byzsim[{cls.extra or cls.requires}]'")

    def start(self, config: Config, folder: Path) -> None:
        """Open the tracker's run for ``config``, whose files are in ``folder`` (an earlier sitting's, on resume)."""
        raise NotImplementedError

    def held(self) -> dict[str, int]:
        """{name: last step} of what the tracker's run already holds (after `start`); {} when it cannot tell."""
        return {}

    def log(self, step: int, row: dict[str, float]) -> None:
        """Record the values of one metrics or evaluation row (its ``step`` column is ``step``)."""
        raise NotImplementedError

    def finish(self, summary: dict | None) -> None:
        """Close the tracker's run: complete with the run's ``summary``, or None when it stopped before its end."""
        raise NotImplementedError


LOGGERS: Registry[type[Logger]] = Registry("logger", packages=("simulator.core.loggers",))
register = LOGGERS.register


def parse_loggers(text: str | None) -> list[str]:
    """The logger specs of a ``--log`` value: ``"tensorboard,mlflow(experiment=x)"`` -> two specs."""
    return [part.strip() for part in split_top(text or "", ",", "--log") if part.strip()]


def build_loggers(loggers: str | Iterable[str | Logger]) -> list[Logger]:
    """Loggers from specs (or a ``--log`` text), each checked to have its package; built loggers pass as they are."""
    specs = parse_loggers(loggers) if isinstance(loggers, str) else list(loggers)
    built = [spec if isinstance(spec, Logger) else LOGGERS.build(spec) for spec in specs]
    kinds = [type(logger) for logger in built]
    for logger in built:
        type(logger).check()
        if kinds.count(type(logger)) > 1:  # two would share the run folder's files of that tracker
            raise UserException(f"--log names logger {logger.name!r} {kinds.count(type(logger))} times; "
                                f"once is enough.")
    return built


def hyperparameters(config: Config) -> dict[str, str | int | float | bool]:
    """The configuration as a tracker's hyperparameters: every field but the output folder, None as ``"none"``."""
    return {k: "none" if v is None else v for k, v in config.to_dict().items() if k != "output"}


def outcome(summary: dict) -> dict[str, float]:
    """The summary's final and best values (accuracies, losses): what a tracker compares runs by."""
    return {k: v for k, v in summary.items()
            if k.startswith(("final_", "best_")) and isinstance(v, (int, float)) and not isinstance(v, bool)}


class LogBook:
    """The loggers of one run, called by its training loop: ``start``, ``log(row)`` per row, ``finish``.

    Used as a context manager around the run: leaving it finishes every logger started and not
    finished with None (the run stopped early), so their files are closed before anything else happens.
    """

    def __init__(self, loggers: str | Iterable[str | Logger] = ()) -> None:
        self.loggers = build_loggers(loggers)
        self._open: list[tuple[Logger, dict[str, int]]] = []

    def start(self, config: Config, folder: Path) -> None:
        for logger in self.loggers:
            logger.start(config, folder)
            self._open.append((logger, logger.held()))

    def log(self, row: dict) -> dict:
        """Pass a metrics or evaluation row (its ``step`` apart) to every logger, less what it holds; the row."""
        if not self._open:
            return row
        step = row["step"]
        values = {k: v for k, v in row.items() if k != "step" and v is not None}
        for logger, held in self._open:
            new = {k: v for k, v in values.items() if step > held.get(k, -1)} if held else values
            if new:
                logger.log(step, new)
        return row

    def finish(self, summary: dict | None) -> None:
        """Finish every open logger with ``summary`` (None: the run stopped before its end)."""
        while self._open:
            logger, _ = self._open.pop(0)
            logger.finish(summary)

    def __enter__(self) -> "LogBook":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if error is None:
            self.finish(None)
            return
        while self._open:  # the run's own error is the one to report: a logger failing to close is only logged
            logger, _ = self._open.pop(0)
            try:
                logger.finish(None)
            except Exception:
                _LOG.exception("logger %r could not close its run", logger.name)
