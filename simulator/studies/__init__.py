"""Reproduction studies: the field's key results, one command each.

    from simulator.studies import reproduce
    reproduce("bucketing", quick=True)

`byzsim reproduce NAME` is the same from the shell; `byzsim reproduce --list`
names the studies and their claims. A study uses the grid runner and the
report only; see docs/studies.md. The names below are imported on first use,
so that the `byzsim` command starts without the plotting stack.
"""
from __future__ import annotations

import importlib

_HOMES = {
    "reproduce": "pipeline", "check_claims": "pipeline", "choose_dataset": "pipeline", "Reproduction": "pipeline",
    "STUDIES": "catalogue", "get": "catalogue", "names": "catalogue", "register": "catalogue",
    "Study": "study", "Claim": "study", "Verdict": "study", "Results": "study",
    "HOLDS": "study", "FAILS": "study", "NOT_COMPARABLE": "study",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'simulator.studies' has no attribute {name!r}")
    return getattr(importlib.import_module(f"simulator.studies.{_HOMES[name]}"), name)
