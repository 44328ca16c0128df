"""How settings read in titles, headings and file names.

A setting is shown as ``f=2, heterogeneity=dirichlet(alpha=0.5), lr=0.05``:
``f`` is the real number of attackers, ``n`` the number of workers, a spec
(the data split, the schedule) carries its own parameters, and a field a run
does not use (the momentum placement without momentum) is left out. The fixed settings named in a figure's title are
the few a reader needs to tell experiments apart; report.md lists them all.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from simulator.report.load import FIRST_FIELDS, Setting, field_key

__all__ = ["SHORT", "TITLE_FIELDS", "describe", "f_label", "fixed_title", "slugs"]

SHORT = {"nb_real_byz": "f", "nb_decl_byz": "declared f", "nb_workers": "n"}
TITLE_FIELDS = (*FIRST_FIELDS, "steps", "batch_size", "lr", "momentum",
                # federated runs only (absent from other runs' identity): the pool, the round, the server
                "clients", "clients_per_round", "participation", "local_steps", "local_lr", "server_opt")


def f_label(values: dict[str, Any]) -> str:
    """A number of attackers: ``f=2``, with the declared number when it is given too."""
    declared = f", declared {values['nb_decl_byz']}" if "nb_decl_byz" in values else ""
    return f"f={values.get('nb_real_byz')}{declared}"


def pairs(items: Iterable[tuple[str, Any]]) -> str:
    """``f=2, lr=0.05`` from (field, value) pairs: unused fields dropped, main fields first."""
    items = dict(items)
    return ", ".join(f"{SHORT.get(k, k)}={items[k]!s}" for k in sorted(items, key=field_key) if items[k] is not None)


def describe(setting: Setting) -> str:
    """A setting as text; ``all runs`` when nothing varies."""
    return pairs(setting) or "all runs"


def fixed_title(fixed: dict[str, Any], setting: Setting = ()) -> str:
    """The figure's own setting, then the main fixed settings, for a title."""
    shown = {k: fixed[k] for k in TITLE_FIELDS if k in fixed}
    if shown.get("nb_decl_byz") == shown.get("nb_real_byz"):
        shown.pop("nb_decl_byz", None)
    return "; ".join(part for part in (pairs(setting), pairs(shown.items())) if part)


def slugs(settings: Sequence[Setting]) -> list[str]:
    """A distinct file-name suffix per setting (empty for the one setting of a grid where nothing varies)."""
    if len(settings) == 1 and not settings[0]:
        return [""]
    names = [re.sub(r"[^A-Za-z0-9.=-]+", "_", pairs(s).replace("declared f", "decl")).strip("_")[:60]
             for s in settings]
    unique = len(set(names)) == len(names)
    return [f"-{n}" if unique else f"-{i + 1}-{n}" for i, n in enumerate(names)]
