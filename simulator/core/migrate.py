"""Carry run folders and run records over to the run ids of the spec spelling.

When every configurable part became a spec (``heterogeneity = "dirichlet(alpha=0.3)"``
in place of ``heterogeneity = "dirichlet"`` with ``alpha = 0.3``), the identity a
run id hashes took the canonical specs, so every run id changed while no result
did. `migrate` rewrites a folder of runs (a grid's output, or ``--records``) in
place: each run's config.json is read in either spelling and written in the new
one, summary.json takes the new id, and the folder is renamed to it; a folder
already under its id is left as it is. `byzsim migrate FOLDER` runs it.

It also carries over the momentum placement renamed in place: a run made
with ``momentum_at = "server"`` before that name took ByzantineMomentum's
meaning has a folder named by the id that ``aggregate`` hashes to
(`simulator.core.identity.HASHED_AS`); its config.json is rewritten to
``aggregate`` under the same id. A grid refuses such folders until then.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from collections.abc import Iterable
from pathlib import Path

from experiments.tools import UserException
from simulator.core.config import Config
from simulator.core.legacy import OLD_FIELDS
from simulator.core.store import CONFIG, SUMMARY, RunFolder

__all__ = ["Migration", "migrate", "refuse_outdated", "renamed_placement"]


@dataclass
class Migration:
    """What `migrate` did: folders renamed, already current, and left alone because the new id was taken."""

    renamed: int = 0
    current: int = 0
    clashes: list[str] = field(default_factory=list)


def migrate(root: str | Path) -> Migration:
    """Rename every run folder directly below ``root`` to its current run id (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise UserException(f"{str(root)!r} is not a folder of runs.")
    done = Migration()
    for folder in sorted(p for p in root.iterdir() if (p / CONFIG).is_file()):
        store = RunFolder(folder)
        try:
            data = store.read_json(CONFIG)
            config = Config.from_dict(Config.upgrade(renamed_placement(folder.name, data), quiet=True))
        except (json.JSONDecodeError, UserException) as err:
            raise UserException(f"Run folder {str(folder)!r} cannot be migrated: {err}") from None
        new = config.run_id()
        if new == folder.name and data in (config.to_dict(), config.to_saved()):
            done.current += 1
            continue
        if new != folder.name and (root / new).exists():
            done.clashes.append(f"{folder.name} -> {new}")
            continue
        store.write_json(CONFIG, config.to_saved())
        if (folder / SUMMARY).is_file():
            store.write_json(SUMMARY, {**store.read_json(SUMMARY), "run_id": new})
        os.replace(folder, root / new)
        done.renamed += 1
    return done


def renamed_placement(name: str, data: dict) -> dict:
    """``data`` with the old ``server`` placement as ``aggregate`` when the folder ``name`` says it is that run."""
    if data.get("momentum_at") != "server" or not data.get("momentum"):
        return data
    try:
        as_aggregate = Config.from_dict(Config.upgrade({**data, "momentum_at": "aggregate"}, quiet=True))
    except UserException:
        return data
    return {**data, "momentum_at": "aggregate"} if as_aggregate.run_id() == name else data


def _outdated(folder: Path) -> bool:
    """Whether the run folder is in the old spelling, or holds a run of the old ``server`` placement."""
    data = json.loads((folder / CONFIG).read_text() or "{}")
    return bool(OLD_FIELDS.keys() & data.keys()) or renamed_placement(folder.name, data) is not data


def refuse_outdated(root: Path, names: Iterable[str]) -> None:
    """`UserException` when a run folder of ``root`` among ``names`` is in an old spelling: migrate it first."""
    old = [name for name in sorted(names) if (root / name / CONFIG).is_file() and _outdated(root / name)]
    if old:
        raise UserException(f"{str(root)!r} holds {len(old)} runs in an old spelling (before the spec spelling, or "
                            f"with momentum at 'server' before it took ByzantineMomentum's meaning; e.g. {old[0]}): "
                            f"run `byzsim migrate {root}` first (docs/grids.md).")
