"""What makes two runs the same run: a config's canonical identity and its run id.

The identity is the config reduced to what changes the run's numbers, in one
canonical form:

- the aggregator chain and the attack as canonical specs: parsed, names
  lower-cased, every parameter with its default filled, numbers in one form
  (``cclip(tau=5)``, ``cclip(tau=5.0)`` and ``cclip`` with ``tau=5`` by keyword
  are one identity);
- only the fields the chosen modes read: ``alpha`` only under dirichlet,
  ``lr_milestones`` only under the step schedule, the momentum placement only
  with momentum, ``chunk_size`` only for the engines that chunk, ``lr`` and
  its schedule not in federated runs with a fixed ``local_lr``;
- defaults resolved: the real number of attackers, the dataset's default model,
  the device type (``cpu``, ``cuda``; which GPU does not matter);
- minus `NEUTRAL_FIELDS`, the one list of fields that never change the numbers
  (where results go, where data is read from, how often a checkpoint is written);
- minus the `OPTIONAL_FIELDS` left at their default: options that leave the
  experiment as it was when they are off, so adding such an option never
  changes the id of an existing run.

The engine is part of the identity: the engines agree to float tolerance, not
bit for bit, so a run never resumes under a different engine. The run id is a
readable slug plus a hash of the identity; the report groups runs by the same
identity minus the seed.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING

import torch

from experiments.grammar import parse_spec

if TYPE_CHECKING:
    from simulator.core.config import Config

__all__ = ["NEUTRAL_FIELDS", "OPTIONAL_FIELDS", "identity", "run_id"]

NEUTRAL_FIELDS = ("output", "data_root", "checkpoint_every", "dist_timeout")
FEDERATED_FIELDS = ("local_steps", "local_lr", "local_momentum", "local_batches", "clients", "clients_per_round",
                    "participation", "known_f", "server_opt", "server_lr", "server_betas", "server_eps")
OPTIONAL_FIELDS = ("validation_split", "memory_budget", *FEDERATED_FIELDS)
_CHUNKING_ENGINES = ("vmap", "grouped", "auto", "distributed")


def _inactive(config: "Config") -> set[str]:
    """Fields that the chosen heterogeneity mode, schedule, momentum and engine do not read."""
    from simulator.core.partition import MODES
    from simulator.core.schedule import SCHEDULES

    unused: set[str] = set()
    for registry, chosen in ((MODES, config.heterogeneity), (SCHEDULES, config.lr_schedule)):
        for name in registry.names():
            unused |= set(registry.get(name).params)
        unused -= set(registry.get(chosen).params)
    if config.momentum == 0:
        unused |= {"momentum_at", "dampening", "nesterov"}
    if config.engine not in _CHUNKING_ENGINES:
        unused |= {"chunk_size", "memory_budget"}
    if config.engine != "distributed":
        unused.add("dist_byzantine")
    if config.clients is not None:
        unused.add("nb_workers")  # a pool's round takes clients_per_round (or participation) of its clients
    if config.server_opt == "sgd":
        unused |= {"server_betas", "server_eps"}
    if config.federated and config.local_lr is not None:  # the clients' fixed step replaces the scheduled lr
        unused |= {"lr", "lr_schedule", *(p for name in SCHEDULES.names() for p in SCHEDULES.get(name).params)}
    return unused


def identity(config: "Config") -> dict:
    """The canonical, result-changing content of ``config`` (see the module docstring)."""
    import aggregators
    import attacks

    data = config.to_dict()
    defaults = config.defaults()
    off = {key for key in OPTIONAL_FIELDS if getattr(config, key) == defaults[key]}
    for key in (*NEUTRAL_FIELDS, "aggregator_args", "attack_args", *_inactive(config), *off):
        data.pop(key, None)
    data["aggregator"] = aggregators.get(config.aggregator, **config.aggregator_args).canonical
    data["attack"] = attacks.get(config.attack, **config.attack_args).canonical
    data["nb_real_byz"] = config.real_byz
    data["model"] = config.model_name
    data["device"] = torch.device(config.device).type
    if "lr_milestones" in data:
        data["lr_milestones"] = sorted(data["lr_milestones"])
    return data


def run_id(config: "Config") -> str:
    """A readable slug (dataset, rule and attack names, f, seed) plus a hash of the identity."""
    digest = hashlib.sha1(json.dumps(identity(config), sort_keys=True).encode()).hexdigest()[:10]
    rule = "+".join(name for name, _ in parse_spec(config.aggregator, "aggregator", chain=True))
    (attack, _), = parse_spec(config.attack, "attack")
    slug = f"{config.dataset}-{rule}-{attack}-f{config.real_byz}-s{config.seed}"
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", slug) + "-" + digest
