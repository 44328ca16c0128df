"""Which outside plug-ins a folder of runs needs: ``plugins.json`` beside the run folders.

A grid (and `byzsim train`) writes it in its output folder when plug-ins
registered parts (`experiments.plugins.loaded`): each plug-in and the names it
registered, by kind. A reader that meets an unknown name under that folder
(`report`, `grid --list`) then says in one line which plug-in provides it.
The record only names plug-ins: nothing is imported from a results folder.
"""
from __future__ import annotations

import json
from pathlib import Path

from experiments import plugins
from experiments.atomic import atomic_write
from experiments.tools import UnavailableException, UserException

__all__ = ["PLUGINS", "record", "needed", "explain"]

PLUGINS = "plugins.json"


def record(folder: str | Path) -> None:
    """Add the plug-ins loaded in this process that registered something to ``folder/plugins.json``."""
    used = {key: names for key, names in plugins.loaded().items() if names}
    if not used:
        return
    path = Path(folder) / PLUGINS
    merged = {**needed(folder), **used}
    if not path.is_file() or merged != needed(folder):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (json.dumps(merged, indent=2, sort_keys=True) + "\n").encode())


def needed(folder: str | Path) -> dict[str, dict[str, list[str]]]:
    """The plug-ins recorded for ``folder``: {plug-in: {kind: names}} (empty when none are)."""
    try:
        data = json.loads((Path(folder) / PLUGINS).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def explain(folder: str | Path, err: UnavailableException) -> UserException:
    """The one-line error for an unknown name under ``folder``: which recorded plug-in provides it, if one does."""
    for key, names in needed(folder).items():
        if str(err.name) in names.get(err.kind, []):
            return UserException(f"Unknown {err.kind} {err.name!r}: the runs under {str(folder)!r} were made with the "
                                 f"plug-in {key} ({PLUGINS}); load it with --plugins {key} or BYZSIM_PLUGINS.")
    return err
