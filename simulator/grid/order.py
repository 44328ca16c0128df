"""The runs of the grid file copied into an output folder, in the file's order: what a report follows.

The runner copies the grid file it ran into its output as ``grid.toml`` (into
``<output>/<name>`` for each grid of a file of several). `expansion` expands
those copies again (`load_grids`) and returns the runs' identities in the
expansion's order, from which `simulator.report` ranks the rules, attacks and
setting values it shows (`write_report(..., expansion=...)`).
"""
from __future__ import annotations

import logging
from pathlib import Path

from experiments.tools import UnavailableException, UserException
from simulator.grid.runner import GRID_FILE
from simulator.grid.spec import load_grids

logger = logging.getLogger("byzsim")

__all__ = ["expansion"]


def expansion(folder: str | Path) -> list[dict]:
    """The identities of the runs of ``folder/grid.toml`` and ``folder/*/grid.toml``, in expansion order.

    A file copied into several grids' folders is expanded once. A copy that no longer loads (a plug-in's name
    not registered here, a field renamed since) is left out with a warning; no copy is an empty list.
    """
    root, seen, out = Path(folder), set(), []
    for path in [root / GRID_FILE, *sorted(root.glob(f"*/{GRID_FILE}"))]:
        try:
            text = path.read_bytes() if path.is_file() else None
            if text is None or text in seen:
                continue
            seen.add(text)
            grids = load_grids(path)
        except (OSError, UserException) as err:
            # A name from a plug-in not loaded here: the runs' own reading then says which plug-in, in one line.
            unknown = isinstance(err, UnavailableException) or isinstance(err.__cause__, UnavailableException)
            (logger.debug if unknown else logger.warning)("%s does not load (%s): the report's order leaves it out",
                                                          path, err)
            continue
        out += [config.identity() for grid in grids.values() for config in grid.configs]
    return out
