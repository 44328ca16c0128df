"""Old spellings of a Config: flat fields that served one choice, folded into that choice's spec.

Before every configurable part was a spec, ``heterogeneity = "dirichlet"`` took
its concentration from a field ``alpha``, the schedules from ``lr_*`` fields, the
server optimiser from ``server_*`` fields, the engine from ``chunk_size`` and
``memory_budget``, torchrun from ``engine = "distributed"`` with ``dist_*``, and
models, criteria, rules and attacks from ``*_args`` tables. `upgrade` rewrites
such a dict (a JSON config, a grid's combination, a run folder's config.json)
into the spec spelling and says so in one line; a field the chosen part never
read is dropped silently, as it never changed the run.
"""
from __future__ import annotations

import logging

from experiments.grammar import format_spec, parse_spec

__all__ = ["OLD_FIELDS", "upgrade"]

logger = logging.getLogger("byzsim")

_BATCHED = ("vmap", "grouped", "auto", "fastest")  # the engines that take chunk_size and memory_budget
# old field -> (the spec field it folds into, the spec names that read it, the parameter there)
OLD_FIELDS = {
    "alpha": ("heterogeneity", ("dirichlet",), "alpha"),
    "gamma": ("heterogeneity", ("gamma",), "iid_fraction"),
    "lr_decay": ("lr_schedule", ("inverse",), "timescale"),
    "lr_decay_delta": ("lr_schedule", ("inverse",), "every"),
    "lr_milestones": ("lr_schedule", ("step",), "milestones"),
    "lr_gamma": ("lr_schedule", ("step",), "factor"),
    "lr_min": ("lr_schedule", ("cosine",), "final_lr"),
    "server_lr": ("server_opt", ("sgd", "adam", "yogi"), "lr"),
    "server_betas": ("server_opt", ("adam", "yogi"), ("beta1", "beta2")),
    "server_eps": ("server_opt", ("adam", "yogi"), "tau"),
    "chunk_size": ("engine", _BATCHED, "chunk_size"),
    "memory_budget": ("engine", _BATCHED, "memory_budget"),
    "dist_timeout": ("execution", ("torchrun",), "timeout"),
    "dist_byzantine": ("execution", ("torchrun",), "byzantine"),
    "model_args": ("model", None, None),
    "criterion_args": ("criterion", None, None),
    "aggregator_args": ("aggregator", None, None),
    "attack_args": ("attack", None, None),
}


def upgrade(data: dict, defaults: dict, where: str = "configuration", quiet: bool = False) -> dict:
    """``data`` with old fields folded into the specs they served; logs one line naming the new spelling.

    ``defaults`` gives the specs that ``data`` leaves out (the model: the dataset's default model).
    ``quiet`` folds without the line: the command line's ``--model-args``-style options are sugar, not old.
    """
    old = {key: data[key] for key in OLD_FIELDS if key in data}
    if not old and data.get("engine") != "distributed":
        return data
    data = {k: v for k, v in data.items() if k not in OLD_FIELDS}
    folded: dict[str, dict] = {}
    if data.get("engine") == "distributed":  # the distributed engine is now an execution, its ranks run auto
        data["engine"], data["execution"], folded["execution"] = "auto", "torchrun", {}
    for key, value in old.items():
        field, readers, param = OLD_FIELDS[key]
        spec = data.get(field, defaults[field])
        if spec is None or value in (None, {}) or isinstance(value, dict) != (param is None):
            continue
        name = parse_spec(spec, field, chain=True)[-1][0]
        if param is None:
            folded.setdefault(field, {}).update(value)
        elif name in readers:
            folded.setdefault(field, {}).update(zip(param, value) if isinstance(param, tuple) else {param: value})
    for field, params in folded.items():
        *front, (name, given) = parse_spec(data.get(field, defaults[field]), field, chain=True)
        data[field] = ">".join(format_spec(n, p) for n, p in [*front, (name, {**given, **params})])
    if folded and not quiet:
        logger.warning("%s uses old spellings (%s); write %s", where, ", ".join(sorted(old)),
                       ", ".join(f"{field} = {data[field]!r}" for field in folded))
    return data
