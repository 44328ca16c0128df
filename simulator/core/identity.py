"""What makes two runs the same run: a config's canonical identity and its run id.

The identity is the config reduced to what changes the run's numbers, in one
canonical form:

- every spec field (the aggregator chain, the attack, the heterogeneity mode, the
  learning-rate schedule, the server optimiser, the engine, the execution) as its
  canonical spec: parsed, names lower-cased, every parameter with its default
  filled, numbers in one form (``cclip(tau=5)`` and ``cclip(tau=5.0)`` are one
  identity), less the parameters a plug-in declares neutral (a timeout); the model
  and criterion specs with their parameters sorted; the dataset spec with only
  the parameters that differ from their defaults (``fashionmnist``,
  ``fashionmnist(flip=true,normalise=false)``), so a bare name keeps its id;
- defaults resolved: the real number of attackers, the dataset's default model,
  the device type (``cpu``, ``cuda``; which GPU does not matter);
- run-wide settings that cannot act dropped: the momentum placement, dampening
  and Nesterov without momentum, ``nb_workers`` with a client pool (a round takes
  its clients), ``lr`` and its schedule in federated runs with a fixed ``local_lr``;
- minus `NEUTRAL_FIELDS`, the fields that never change the numbers (where
  results go, where data is read from, how often a checkpoint is written);
- minus the `OPTIONAL_FIELDS` left at their default: options that leave the
  experiment as it was when they are off, so adding such an option never
  changes the id of an existing run.

Run ids hash the identity with one spelling kept from before a rename: the
momentum placement ``aggregate`` hashes as ``server``, the name it had until
``server`` took ByzantineMomentum's meaning (momentum added to each vector
before the rule), which hashes as ``server-before-rule``. So a run of the
old placement keeps its id under its new name, and no run id of the old
``server`` runs now means the new placement (`HASHED_AS`).

The engine is part of the identity: the engines agree to float tolerance, not
bit for bit, so a run never resumes under a different engine. The run id is a
readable slug plus a hash of the identity; the report groups runs by the same
identity minus the seed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from simulator.core.config import Config

__all__ = ["HASHED_AS", "NEUTRAL_FIELDS", "OPTIONAL_FIELDS", "identity", "run_id"]

NEUTRAL_FIELDS = ("output", "data_root", "checkpoint_every")
FEDERATED_FIELDS = ("local_steps", "local_lr", "local_momentum", "local_batches", "clients", "clients_per_round",
                    "participation", "known_f", "server_opt")
DECENTRALISED_FIELDS = ("topology", "eval_nodes")
OPTIONAL_FIELDS = ("validation_split", "execution", *FEDERATED_FIELDS, *DECENTRALISED_FIELDS, "privacy")
# Values a run id hashes under another spelling (see the module docstring): field -> {value: hashed as}.
HASHED_AS = {"momentum_at": {"aggregate": "server", "server": "server-before-rule"}}


def identity(config: "Config") -> dict:
    """The canonical, result-changing content of ``config`` (see the module docstring)."""
    data = config.to_dict()
    for key, part in config.parts.items():  # the specs, and the model and criterion with arguments sorted
        data[key] = part.identity
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    unused = {key for key in OPTIONAL_FIELDS if getattr(config, key) == defaults[key]} | set(NEUTRAL_FIELDS)
    if config.momentum == 0:
        unused |= {"momentum_at", "dampening", "nesterov"}
    if config.clients is not None:
        unused.add("nb_workers")
    if config.federated and config.local_lr is not None:  # the clients' fixed step replaces the scheduled lr
        unused |= {"lr", "lr_schedule"}
    for key in unused:
        data.pop(key, None)
    data["nb_real_byz"] = config.real_byz
    data["device"] = torch.device(config.device).type
    return data


def run_id(config: "Config") -> str:
    """A readable slug (dataset, rule and attack names, f, seed) plus a hash of the identity.

    The slug names the dataset only; its parameters (``fashionmnist(flip=true)``) are in the hash.
    """
    hashed = identity(config)
    for key, spellings in HASHED_AS.items():
        if key in hashed:
            hashed[key] = spellings.get(hashed[key], hashed[key])
    digest = hashlib.sha1(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:10]
    chain = config.parts["aggregator"]  # a rule, or a Chain of steps in front of its rule
    rule = "+".join(step.name for step in [*getattr(chain, "steps", []), getattr(chain, "rule", chain)])
    slug = f"{config.dataset_name}-{rule}-{config.parts['attack'].name}-f{config.real_byz}-s{config.seed}"
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", slug) + "-" + digest
