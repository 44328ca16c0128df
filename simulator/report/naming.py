"""How settings read in titles, headings and file names.

A setting is shown as ``f=2, heterogeneity=dirichlet(alpha=0.5), lr=0.05``:
``f`` is the real number of attackers, ``n`` the number of workers, a spec
(the data split, the schedule) carries its own parameters, and a field a run
does not use (the momentum placement without momentum) is left out. The fixed settings named in a figure's title are
the few a reader needs to tell experiments apart; report.md lists those that
define the experiment (`fixed_rows`).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from simulator.core.config import Config
from simulator.core.identity import NEUTRAL_FIELDS
from simulator.report.load import FIRST_FIELDS, Setting, field_key

__all__ = ["EXPERIMENT_FIELDS", "SHORT", "TITLE_FIELDS", "describe", "f_label", "fixed_rows", "fixed_title", "slugs"]

SHORT = {"nb_real_byz": "f", "nb_decl_byz": "declared f", "nb_workers": "n"}
TITLE_FIELDS = (*FIRST_FIELDS, "steps", "batch_size", "lr", "momentum",
                # federated runs only (absent from other runs' identity): the pool, the round, the server
                "clients", "clients_per_round", "participation", "local_steps", "local_lr", "server_opt")
# What defines an experiment, in reading order: listed in report.md's fixed settings whatever their value.
EXPERIMENT_FIELDS = ("dataset", "model", "nb_workers", "nb_real_byz", "nb_decl_byz", "heterogeneity", "batch_size",
                     "steps", "lr", "lr_schedule", "momentum", "momentum_at", "weight_decay", "clients",
                     "clients_per_round", "participation", "local_steps", "local_lr", "server_opt")


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


@cache
def _defaults() -> dict[str, Any]:
    """Each field's default as an identity holds it: what says nothing of an experiment."""
    return {**{f.name: f.default for f in dataclasses.fields(Config)}, **Config().identity()}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict, tuple)) and not value)


def fixed_rows(fixed: dict[str, Any]) -> list[tuple[str, Any]]:
    """The fixed settings report.md lists, as (field, value) pairs in reading order.

    `EXPERIMENT_FIELDS` whatever their value, then any other field (the loss, the evaluation period, the
    engine...) only where it differs from its default, by name; never an unset or empty value, nor a field
    that does not change the numbers (`NEUTRAL_FIELDS`: where results go, checkpoints).
    """
    defaults = _defaults()
    shown = {k: v for k, v in fixed.items() if not _empty(v) and k not in NEUTRAL_FIELDS
             and (k in EXPERIMENT_FIELDS or k not in defaults or v != defaults[k])}
    rank = {name: i for i, name in enumerate(EXPERIMENT_FIELDS)}
    return [(k, shown[k]) for k in sorted(shown, key=lambda k: (rank.get(k, len(rank)), k))]


def slugs(settings: Sequence[Setting]) -> list[str]:
    """A distinct file-name suffix per setting (empty for the one setting of a grid where nothing varies)."""
    if len(settings) == 1 and not settings[0]:
        return [""]
    names = [re.sub(r"[^A-Za-z0-9.=-]+", "_", pairs(s).replace("declared f", "decl")).strip("_")[:60]
             for s in settings]
    unique = len(set(names)) == len(names)
    return [f"-{n}" if unique else f"-{i + 1}-{n}" for i, n in enumerate(names)]
