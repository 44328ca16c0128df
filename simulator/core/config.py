"""One run's configuration: a JSON-serialisable dataclass with a stable run id.

Field names are the `byzsim train` flags with `_` for `-`; each field's help
text is the flag's `--help`. A Config is canonical from construction: the
aggregator and attack specs are parsed and printed back in one form, with
``aggregator_args``/``attack_args`` folded into them (``cclip`` with
``tau=5`` becomes ``cclip(tau=5.0)``), and numbers take their field's type.
`Config.validate()` checks the rest that can be checked without loading data:
numbers, choices, and the rule's requirement on (n, f). The run id
(`simulator.core.identity`) hashes what changes the result.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import aggregators
import attacks
from experiments import models
from experiments.grammar import format_spec, parse_spec
from experiments.loss import LOSSES, criterion_names
from experiments.tools import UserException
from simulator.core import identity as _identity
from simulator.core.engines import ENGINES
from simulator.core.execution import EXECUTIONS
from simulator.core.federated import SERVER_OPTIMIZERS
from simulator.core.legacy import upgrade
from simulator.core.partition import MODES
from simulator.core.schedule import SCHEDULES

MOMENTUM_PLACEMENTS = ("worker", "server", "update")

# Default model for each dataset when `model` is left empty.
DEFAULT_MODELS = {
    "digits": "simples-digits",
    "mnist": "simples-conv",
    "fashionmnist": "simples-conv",
    "cifar10": "simples-cifar",
}

# The spec fields built by a registry (aggregators and attacks by their packages), each parsed once.
PARTS = {"aggregator": aggregators.get, "attack": attacks.get, "heterogeneity": MODES.build,
         "lr_schedule": SCHEDULES.build, "server_opt": SERVER_OPTIMIZERS.build, "engine": ENGINES.build,
         "execution": EXECUTIONS.build}


def _named_spec(spec: str, kind: str) -> str:
    """A model or criterion spec (``top-k(k=5)``) checked by name and printed canonically (parameters sorted)."""
    (name, params), = parse_spec(spec, kind)
    if kind == "model":
        models.constructor(name)
    elif name not in criterion_names():
        raise UserException(f"Unknown criterion {name!r}: use one of {', '.join(criterion_names())}.")
    return format_spec(name, dict(sorted(params.items())))


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field carrying its CLI help text."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class Config:
    """Everything that defines one simulated training run."""

    # Data and model
    dataset: str = _f("digits", "dataset name (see `byzsim list`)")
    data_root: str | None = _f(None, "folder holding the dataset files (default: BYZSIM_DATA or the standard places)")
    model: str | None = _f(None, 'model spec, e.g. "simples-conv" or "simples-full(width=200)" (default: the '
                                 "dataset's default model)")
    loss: str = _f("crossentropy", "training loss: " + " or ".join(LOSSES))
    criterion: str = _f("top-k", 'evaluation criterion spec: "top-k", "top-k(k=5)" or "sigmoid"')
    # Workers
    nb_workers: int = _f(11, "total number of workers n (honest + Byzantine)")
    nb_decl_byz: int = _f(2, "declared number of Byzantine workers f, as the aggregator is told")
    nb_real_byz: int | None = _f(None, "real number of attacking workers (default: the declared number)")
    # Defence and attack
    aggregator: str = _f("average", 'aggregator spec, e.g. "krum", "nnm>krum", "bucketing(s=2)>cclip(tau=10)"')
    attack: str = _f("none", 'attack spec, e.g. "alie", "alie(z=1.5)" (see `byzsim list`)')
    # Optimisation
    batch_size: int = _f(32, "mini-batch size of each worker")
    test_batch_size: int = _f(1024, "batch size used to evaluate on the whole test set")
    steps: int = _f(300, "number of training steps")
    lr: float = _f(0.1, "initial learning rate")
    lr_schedule: str = _f("constant", 'learning-rate schedule spec: "constant", "inverse(timescale=5000)", '
                                      '"step(milestones=[100,200],factor=0.1)" or "cosine(final_lr=0)"')
    momentum: float = _f(0.0, "momentum factor (0 disables it)")
    momentum_at: str = _f("update", "where momentum is applied: " + ", ".join(MOMENTUM_PLACEMENTS))
    dampening: float = _f(0.0, "momentum dampening")
    nesterov: bool = _f(False, "use Nesterov momentum")
    weight_decay: float = _f(0.0, "weight decay applied by the server at the update")
    l2: float = _f(0.0, "l2 regularisation: honest workers add l2 * params to their gradients")
    clip: float | None = _f(None, "clip each honest worker's gradient to this l2 norm")
    # Federated rounds (all off by default: one gradient per worker per step, every worker every step)
    local_steps: int = _f(1, "federated: local SGD steps K each selected client takes per round; it sends its "
                             "update w_K - w")
    local_lr: float | None = _f(None, "federated: the clients' local step size (default: the scheduled lr)")
    local_momentum: float = _f(0.0, "federated: heavy-ball momentum of the local steps, reset every round")
    local_batches: str = _f("fresh", "federated: fresh (each local step draws the client's next batch) or "
                                     "same (every local step of a round reuses one batch)")
    clients: int | None = _f(None, "federated: the pool of N clients, the last nb_real_byz of them Byzantine "
                                   "(default: no pool, every worker takes part in every step)")
    clients_per_round: int | None = _f(None, "federated: clients m sampled each round from the pool")
    participation: float | None = _f(None, "federated: the fraction p of the pool sampled each round, in (0, 1]")
    known_f: bool = _f(False, "federated: tell the rule the round's real number of Byzantine clients f_t instead "
                              "of the declared f")
    server_opt: str = _f("sgd", 'federated: the server\'s optimiser on the pseudo-gradient -aggregate: "sgd(lr=1)" '
                                '(with the momentum placements; FedAvg), "adam(lr=0.01,beta1=0.9,beta2=0.99,tau=0.001)"'
                                ' or "yogi(...)" (FedOpt)')
    # Heterogeneity
    heterogeneity: str = _f("iid", 'data split across workers: "iid", "dirichlet(alpha=0.3)", "extreme" or '
                                   '"gamma(iid_fraction=0.5)"')
    validation_split: float = _f(0.0, "fraction of the training set held out as a validation set, evaluated "
                                      "beside the test set (for hyperparameter selection); 0 keeps it all")
    # Bookkeeping
    eval_every: int = _f(50, "evaluate on the whole test set every this many steps (and at the first and last)")
    checkpoint_every: int = _f(100, "write a resumable checkpoint every this many steps")
    seed: int = _f(1, "seed of every random generator of the run")
    device: str = _f("cpu", 'torch device, e.g. "cpu", "cuda", "cuda:1"')
    engine: str = _f("auto", 'gradient engine spec: "auto" (vmap, or loop when vmap fails), "vmap(chunk_size=8)", '
                             '"grouped(memory_budget=4)" (Conv/Linear models, fastest on CPU) or "loop"; '
                             "memory_budget in GiB (default: 80%% of a GPU's free memory, no limit on a CPU)")
    execution: str = _f("local", 'where the workers compute: "local", or "torchrun(timeout=300,byzantine=server)" '
                                 "(honest workers on torch.distributed ranks; launch with torchrun)")
    output: str = _f("results/runs", "folder under which the run's folder is created")

    def __post_init__(self) -> None:
        # 1 and 1.0 are the same learning rate: store numbers as their field's type so the run id agrees.
        for name, kinds in _field_kinds().items():
            value = getattr(self, name)
            if float in kinds and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, float(value))
        _check_types(self)
        self.parts: dict[str, Any] = {}
        for name in (*PARTS, "model", "criterion"):
            self._build(name)

    def __setattr__(self, name: str, value: Any) -> None:
        """Setting a field after construction re-parses its spec and asks for a new validation."""
        super().__setattr__(name, value)
        if "parts" in self.__dict__ and name in _defaults():
            self.__dict__.pop("_valid", None)
            if name in (*PARTS, "model", "criterion"):
                self._build(name)

    def _build(self, name: str) -> None:
        """Parse and check one spec field once; keep the built part and print the spec canonically."""
        spec = getattr(self, name)
        if name in PARTS:
            self.parts[name] = part = PARTS[name](spec)
            spec = part.spec
        elif spec is not None:
            spec = _named_spec(spec, name)
        super().__setattr__(name, spec)

    def unmet(self) -> str | None:
        """The rule's unmet requirement on the (n, f) a step gives it, or None: one check for runs and grids."""
        return self.parts["aggregator"].unmet(*self.rule_size())

    def rule_size(self) -> tuple[int, int]:
        """The n the rule combines each step, and the largest f it is told."""
        return self.per_round, min(self.real_byz, self.per_round) if self.known_f else self.nb_decl_byz

    # ------------------------------------------------------------------ derived
    @property
    def real_byz(self) -> int:
        """Number of workers that really attack."""
        return self.nb_decl_byz if self.nb_real_byz is None else self.nb_real_byz

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every field's default value."""
        return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(cls)}

    @property
    def federated(self) -> bool:
        """Whether a step is a federated round (local steps, a client pool or a server optimiser)."""
        return any(getattr(self, k) != _defaults()[k] for k in _identity.FEDERATED_FIELDS)

    @property
    def pool(self) -> int:
        """Workers (or clients, with a pool) holding a place: the pool size N, else n."""
        return self.clients if self.clients is not None else self.nb_workers

    @property
    def per_round(self) -> int:
        """How many vectors the rule combines each step: m with a client pool, else n."""
        if self.clients is None:
            return self.nb_workers
        if self.clients_per_round is not None:
            return self.clients_per_round
        return max(1, round(self.participation * self.clients)) if self.participation is not None else self.clients

    @property
    def nb_honest(self) -> int:
        """Honest workers (or honest clients of the pool): they hold the training data."""
        return self.pool - self.real_byz

    @property
    def model_name(self) -> str:
        if self.model:
            return self.model
        if self.dataset not in DEFAULT_MODELS:
            raise UserException(f"Dataset {self.dataset!r} has no default model: pass --model.")
        return DEFAULT_MODELS[self.dataset]

    def identity(self) -> dict:
        """The canonical, result-changing content of this config (see `simulator.core.identity`)."""
        return _identity.identity(self)

    def run_id(self) -> str:
        """Readable slug plus a hash of `identity()`: every field that changes the result, canonically."""
        return _identity.run_id(self)

    def folder(self) -> Path:
        return Path(self.output) / self.run_id()

    # ------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "configuration") -> "Config":
        """A validated Config from a dict of fields; old spellings are folded in with a one-line warning."""
        data = cls.upgrade(data, where)
        unknown = sorted(set(data) - set(_defaults()))
        if unknown:
            raise UserException(f"Unknown configuration field(s): {', '.join(unknown)}.")
        return cls(**data).validate()

    @staticmethod
    def upgrade(data: dict, where: str = "configuration", quiet: bool = False) -> dict:
        """``data`` in the spec spelling (`simulator.core.legacy`): old flat fields folded into their specs."""
        if data.get("model_args") and data.get("model") is None and data.get("dataset", "digits") in DEFAULT_MODELS:
            data = {**data, "model": DEFAULT_MODELS[data.get("dataset", "digits")]}
        return upgrade(data, where, quiet)

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise UserException(f"Configuration file {str(path)!r} does not exist.") from None
        except json.JSONDecodeError as err:
            raise UserException(f"Configuration file {str(path)!r} is not valid JSON: {err}.") from None
        if not isinstance(data, dict):
            raise UserException(f"Configuration file {str(path)!r} must hold a JSON object.")
        return cls.from_dict(data, str(path))

    # --------------------------------------------------------------- validation
    def validate(self) -> "Config":
        """Check types, numbers and the rule's requirement once; raise UserException on the first problem.

        The parts' own parameters were checked when their specs were parsed; a field set
        afterwards asks for a new validation.
        """
        if self.__dict__.get("_valid"):
            return self
        _check_types(self)
        for group in (_population_checks, _training_checks, _federated_checks, _execution_checks):
            for ok, message in group(self):
                if not ok:
                    raise UserException(f"Invalid configuration: {message}.")
        try:
            torch.device(self.device)
        except RuntimeError:
            raise UserException(f"Invalid configuration: unknown device {self.device!r} "
                                "(use e.g. cpu, cuda or cuda:1).") from None
        self.parts["aggregator"].check(*self.rule_size())
        if Path(self.output).exists() and not Path(self.output).is_dir():
            raise UserException(f"Invalid configuration: output {self.output!r} exists and is not a folder.")
        self.__dict__["_valid"] = True
        return self


def _population_checks(c: Config) -> list[tuple[bool, str]]:
    """Workers, attackers and the data split."""
    where = "clients" if c.clients is not None else "nb_workers"
    return [
        (c.nb_workers >= 1, "nb_workers must be at least 1"),
        (c.nb_decl_byz >= 0, "nb_decl_byz must be non-negative"),
        (c.real_byz >= 0, "nb_real_byz must be non-negative"),
        (c.clients is None or c.clients >= 1, "clients must be at least 1"),
        (c.participation is None or 0 < c.participation <= 1, "participation must be in (0, 1]"),
        (c.nb_decl_byz < c.per_round,
         f"nb_decl_byz ({c.nb_decl_byz}) must be below the {c.per_round} workers of a step"),
        (c.real_byz < c.pool, f"the real number of Byzantine workers ({c.real_byz}) must be below {where} ({c.pool})"),
        (0 <= c.validation_split < 1, "validation_split must be in [0, 1)"),
    ]


def _training_checks(c: Config) -> list[tuple[bool, str]]:
    """Batches, the learning-rate schedule, momentum and regularisation."""
    return [
        (c.batch_size >= 1, "batch_size must be at least 1"),
        (c.test_batch_size >= 1, "test_batch_size must be at least 1"),
        (c.steps >= 1, "steps must be at least 1"),
        (c.lr > 0, "lr must be positive"),
        (getattr(c.parts["lr_schedule"], "final_lr", 0) <= c.lr, "the schedule's final_lr must be at most lr"),
        (0 <= c.momentum < 1, "momentum must be in [0, 1)"),
        (0 <= c.dampening <= 1, "dampening must be in [0, 1]"),
        (c.momentum_at in MOMENTUM_PLACEMENTS, f"momentum_at must be one of {', '.join(MOMENTUM_PLACEMENTS)}"),
        (not c.nesterov or c.momentum > 0, "nesterov needs a positive momentum"),
        (c.weight_decay >= 0, "weight_decay must be non-negative"),
        (c.l2 >= 0, "l2 must be non-negative"),
        (c.clip is None or c.clip > 0, "clip must be positive"),
        (c.loss in LOSSES, f"loss must be {' or '.join(LOSSES)}"),
    ]


def _federated_checks(c: Config) -> list[tuple[bool, str]]:
    """Local steps, the client pool and the server optimiser."""
    return [
        (c.local_steps >= 1, "local_steps must be at least 1"),
        (c.local_lr is None or c.local_lr > 0, "local_lr must be positive"),
        (0 <= c.local_momentum < 1, "local_momentum must be in [0, 1)"),
        (c.local_batches in ("fresh", "same"), "local_batches must be fresh or same"),
        (c.clients is not None or (c.clients_per_round is None and c.participation is None),
         "clients_per_round and participation need a pool: set clients"),
        (c.clients_per_round is None or c.participation is None, "give clients_per_round or participation, not both"),
        (c.clients_per_round is None or 1 <= c.clients_per_round <= c.pool,
         f"clients_per_round must be in [1, clients] (clients = {c.pool})"),
        (c.parts["server_opt"].name == "sgd" or c.momentum == 0 or c.momentum_at == "worker",
         "adam and yogi keep their own moments: with server_opt adam or yogi, place momentum at the workers"),
        (not c.federated or not c.parts["execution"].distributed,
         "torchrun execution runs one-gradient steps; federated rounds run in one process"),
    ]


def _execution_checks(c: Config) -> list[tuple[bool, str]]:
    """Evaluation and checkpoints."""
    return [
        (c.eval_every >= 1, "eval_every must be at least 1"),
        (c.checkpoint_every >= 1, "checkpoint_every must be at least 1"),
    ]


@functools.cache
def _defaults() -> dict[str, Any]:
    return Config.defaults()


@functools.cache
def _field_kinds() -> dict[str, tuple[type, ...]]:
    """Each field's allowed types, from its annotation (`int | None` -> (int, NoneType))."""
    hints = typing.get_type_hints(Config)
    return {name: typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
            for name, kind in hints.items()}


def _accepts(kind: type, value: object) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def type_error(name: str, value: object) -> str | None:
    """Why ``value`` cannot be field ``name`` (its annotated type; floats finite), or None if it can."""
    kinds = _field_kinds()[name]
    if any(_accepts(kind, value) for kind in kinds):
        return None
    wanted = " or ".join("a finite number" if k is float else "null" if k is type(None) else k.__name__
                         for k in kinds)
    return f"{name} must be {wanted}, got {value!r}"


def field_kinds(name: str) -> tuple[type, ...]:
    """The types field ``name`` accepts (``int | None`` -> (int, NoneType))."""
    return _field_kinds()[name]


def _check_types(config: Config) -> None:
    """Every field holds a value of its annotated type; floats are finite."""
    for name in _field_kinds():
        problem = type_error(name, getattr(config, name))
        if problem:
            raise UserException(f"Invalid configuration: {problem}.")
