"""Runs made under the previous default engine: a grid keeps them rather than run them again.

Until ``fastest`` became the default engine, a run that named no engine ran
``auto`` (vmap, else loop), and its run id hashes ``auto``. The same grid cell
now reads ``fastest`` and so has another run id: without a rule, a grid
resumed in the folder of its earlier runs would run every cell again, under
another engine. The rule (docs/grids.md): a cell whose engine is ``fastest``
and whose twin under ``auto`` (the same spec parameters) has a run in the
grid's output folder, finished or not, or a finished record in its records
folder, becomes that twin. Its finished run counts as finished, an unfinished
one resumes under ``auto``; the grid says how many cells it kept so, once.
Run ids are untouched: each still names the engine its run used.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["DEFAULT", "PREVIOUS", "twin", "keep_previous_runs"]

DEFAULT, PREVIOUS = "fastest", "auto"
CONFIG, SUMMARY = "config.json", "summary.json"  # as `simulator.core.store` names them

logger = logging.getLogger("byzsim")
_said: set[tuple[str, int]] = set()  # (folders, count) already reported in this process


def twin(config):
    """``config`` with its ``fastest`` engine spelled ``auto`` (same parameters), or None for another engine."""
    part = config.parts["engine"]
    if part.name != DEFAULT:
        return None
    return dataclasses.replace(config, engine=PREVIOUS + part.spec[len(part.name):])


def keep_previous_runs(configs: Sequence, outputs: Iterable[str | Path] = (),
                       records: Iterable[str | Path] = ()) -> list:
    """``configs`` with each ``fastest`` cell replaced by its ``auto`` twin where the twin has a run.

    A twin has a run when an output folder holds its run folder (``config.json``: finished or not), or a
    records folder its finished record (``summary.json``).
    """
    outputs, records = [Path(p) for p in outputs], [Path(p) for p in records]
    kept, count = [], 0
    for config in configs:
        other = twin(config)
        if other is not None:
            name = other.run_id()
            if any((o / name / CONFIG).is_file() for o in outputs) or any((r / name / SUMMARY).is_file()
                                                                           for r in records):
                config, count = other, count + 1
        kept.append(config)
    where = ", ".join(str(p) for p in [*outputs, *records])
    if count and (where, count) not in _said:
        _said.add((where, count))
        logger.warning("%d run(s) in %s were made with engine '%s', the default before '%s': the grid keeps them "
                       "under '%s' (same run ids, same results) rather than run them again under '%s' "
                       "(docs/grids.md)", count, where, PREVIOUS, DEFAULT, PREVIOUS, DEFAULT)
    return kept
