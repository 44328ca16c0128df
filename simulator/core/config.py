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

from experiments.tools import UserException

MOMENTUM_PLACEMENTS = ("worker", "server", "update")

# Default model for each dataset when `model` is left empty.
DEFAULT_MODELS = {
    "digits": "simples-digits",
    "mnist": "simples-conv",
    "fashionmnist": "simples-conv",
    "cifar10": "simples-cifar",
}


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
    model: str | None = _f(None, "model name (default: the dataset's default model)")
    model_args: dict = _f({}, "keyword arguments of the model constructor (JSON or k=v,k=v)")
    loss: str = _f("crossentropy", "training loss: crossentropy or nll")
    criterion: str = _f("top-k", "evaluation criterion: top-k or sigmoid (experiments.Criterion)")
    criterion_args: dict = _f({}, 'keyword arguments of the criterion, e.g. k=5 for top-5 accuracy (JSON or k=v,k=v)')
    # Workers
    nb_workers: int = _f(11, "total number of workers n (honest + Byzantine)")
    nb_decl_byz: int = _f(2, "declared number of Byzantine workers f, as the aggregator is told")
    nb_real_byz: int | None = _f(None, "real number of attacking workers (default: the declared number)")
    # Defence and attack
    aggregator: str = _f("average", 'aggregator spec, e.g. "krum", "nnm>krum", "bucketing(s=2)>cclip(tau=10)"')
    aggregator_args: dict = _f({}, "keyword parameters of the last rule of the chain, folded into the spec "
                                   "(JSON or k=v,k=v)")
    attack: str = _f("none", 'attack spec, e.g. "alie", "alie(z=1.5)" (see `byzsim list`)')
    attack_args: dict = _f({}, "keyword parameters of the attack, folded into the spec (JSON or k=v,k=v)")
    # Optimisation
    batch_size: int = _f(32, "mini-batch size of each worker")
    test_batch_size: int = _f(1024, "batch size used to evaluate on the whole test set")
    steps: int = _f(300, "number of training steps")
    lr: float = _f(0.1, "initial learning rate")
    lr_schedule: str = _f("constant", "learning-rate schedule: constant, inverse, step or cosine")
    lr_decay: float = _f(5000.0, "inverse schedule: lr / (1 + t / lr_decay)")
    lr_decay_delta: int = _f(1, "inverse schedule: recompute the rate every this many steps")
    lr_milestones: list = _f([], "step schedule: steps at which the rate is multiplied by lr_gamma")
    lr_gamma: float = _f(0.1, "step schedule: factor applied at each milestone")
    lr_min: float = _f(0.0, "cosine schedule: final learning rate")
    momentum: float = _f(0.0, "momentum factor (0 disables it)")
    momentum_at: str = _f("update", "where momentum is applied: worker, server or update")
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
    server_opt: str = _f("sgd", "federated: the server's optimiser on the pseudo-gradient -aggregate: sgd "
                                "(with the momentum placements), adam or yogi (FedOpt)")
    server_lr: float = _f(1.0, "federated: the server's step size on the pseudo-gradient (1 with sgd: FedAvg)")
    server_betas: list = _f([0.9, 0.99], "federated: adam/yogi's beta1 and beta2")
    server_eps: float = _f(1e-3, "federated: adam/yogi's tau, the adaptivity (and the square root of the second "
                                 "moment's start)")
    # Heterogeneity
    heterogeneity: str = _f("iid", "data split across workers: iid, dirichlet, extreme or gamma")
    alpha: float = _f(1.0, "dirichlet heterogeneity: concentration (smaller is more heterogeneous)")
    gamma: float = _f(0.5, "gamma heterogeneity: fraction of the data split iid")
    validation_split: float = _f(0.0, "fraction of the training set held out as a validation set, evaluated "
                                      "beside the test set (for hyperparameter selection); 0 keeps it all")
    # Bookkeeping
    eval_every: int = _f(50, "evaluate on the whole test set every this many steps (and at the first and last)")
    checkpoint_every: int = _f(100, "write a resumable checkpoint every this many steps")
    seed: int = _f(1, "seed of every random generator of the run")
    device: str = _f("cpu", 'torch device, e.g. "cpu", "cuda", "cuda:1"')
    engine: str = _f("auto", "gradient engine: auto (vmap, or loop when vmap fails), vmap, grouped "
                             "(Conv/Linear models, fastest on CPU), loop, or distributed (under torchrun)")
    chunk_size: int | None = _f(None, "vmap/grouped engines: workers per batched pass (default: as many as fit "
                                      "--memory-budget, or a GPU's free memory; all on a CPU)")
    memory_budget: float | None = _f(None, "vmap/grouped engines: GiB for the workers' batched pass, which sets the "
                                           "chunk size when --chunk-size is not given (default: 80%% of a GPU's free "
                                           "memory; no limit on a CPU)")
    dist_timeout: float = _f(300.0, "distributed engine: seconds to wait for a rank before stopping the run")
    dist_byzantine: str = _f("server", "distributed engine: where Byzantine workers compute their own gradients, "
                                       "server or ranks")
    output: str = _f("results/runs", "folder under which the run's folder is created")

    def __post_init__(self) -> None:
        # 1 and 1.0 are the same learning rate: store numbers as their field's type so the run id agrees.
        for name, kinds in _field_kinds().items():
            value = getattr(self, name)
            if float in kinds and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, float(value))
        _check_types(self)
        self._fold_specs()

    def _fold_specs(self) -> None:
        """Parse the aggregator and attack specs, fold their keyword arguments in, print them canonically."""
        import aggregators
        import attacks

        self.aggregator = aggregators.get(self.aggregator, **self.aggregator_args).spec
        self.attack = attacks.get(self.attack, **self.attack_args).spec
        self.aggregator_args, self.attack_args = {}, {}

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
        from simulator.core.identity import FEDERATED_FIELDS
        defaults = _defaults()
        return any(getattr(self, k) != defaults[k] for k in FEDERATED_FIELDS)

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
        from simulator.core.identity import identity
        return identity(self)

    def run_id(self) -> str:
        """Readable slug plus a hash of `identity()`: every field that changes the result, canonically."""
        from simulator.core.identity import run_id
        return run_id(self)

    def folder(self) -> Path:
        return Path(self.output) / self.run_id()

    # ------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UserException(f"Unknown configuration field(s): {', '.join(unknown)}.")
        return cls(**data).validate()

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
        return cls.from_dict(data)

    # --------------------------------------------------------------- validation
    def validate(self) -> "Config":
        """Check types, numbers and choices; raise UserException on the first problem."""
        _check_types(self)
        for group in (_population_checks, _training_checks, _federated_checks, _execution_checks):
            for ok, message in group(self):
                if not ok:
                    raise UserException(f"Invalid configuration: {message}.")
        _check_choices(self)
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
        (c.alpha > 0, "alpha must be positive"),
        (0 <= c.gamma <= 1, "gamma must be in [0, 1]"),
        (0 <= c.validation_split < 1, "validation_split must be in [0, 1)"),
    ]


def _training_checks(c: Config) -> list[tuple[bool, str]]:
    """Batches, the learning-rate schedule, momentum and regularisation."""
    return [
        (c.batch_size >= 1, "batch_size must be at least 1"),
        (c.test_batch_size >= 1, "test_batch_size must be at least 1"),
        (c.steps >= 1, "steps must be at least 1"),
        (c.lr > 0, "lr must be positive"),
        (c.lr_gamma > 0, "lr_gamma must be positive"),
        (0 <= c.lr_min <= c.lr, "lr_min must be in [0, lr]"),
        (c.lr_decay > 0, "lr_decay must be positive"),
        (c.lr_decay_delta >= 1, "lr_decay_delta must be at least 1"),
        (0 <= c.momentum < 1, "momentum must be in [0, 1)"),
        (0 <= c.dampening <= 1, "dampening must be in [0, 1]"),
        (c.momentum_at in MOMENTUM_PLACEMENTS, f"momentum_at must be one of {', '.join(MOMENTUM_PLACEMENTS)}"),
        (not c.nesterov or c.momentum > 0, "nesterov needs a positive momentum"),
        (c.weight_decay >= 0, "weight_decay must be non-negative"),
        (c.l2 >= 0, "l2 must be non-negative"),
        (c.clip is None or c.clip > 0, "clip must be positive"),
        (c.loss in ("crossentropy", "nll"), "loss must be crossentropy or nll"),
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
        (c.server_opt in ("sgd", "adam", "yogi"), "server_opt must be sgd, adam or yogi"),
        (c.server_lr > 0, "server_lr must be positive"),
        (all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in c.server_betas),
         "server_betas must be two numbers"),
        (len(c.server_betas) == 2 and all(0 <= b < 1 for b in c.server_betas),
         "server_betas must be two numbers in [0, 1)"),
        (c.server_eps > 0, "server_eps must be positive"),
        (c.server_opt == "sgd" or c.momentum == 0 or c.momentum_at == "worker",
         "adam and yogi keep their own moments: with server_opt adam or yogi, place momentum at the workers"),
        (not c.federated or c.engine != "distributed",
         "the distributed engine runs one-gradient steps; federated rounds run in one process"),
    ]


def _execution_checks(c: Config) -> list[tuple[bool, str]]:
    """Evaluation, checkpoints, engines and the distributed run."""
    return [
        (c.eval_every >= 1, "eval_every must be at least 1"),
        (c.checkpoint_every >= 1, "checkpoint_every must be at least 1"),
        (c.chunk_size is None or c.chunk_size >= 1, "chunk_size must be at least 1"),
        (c.memory_budget is None or c.memory_budget > 0, "memory_budget must be positive"),
        (c.dist_timeout > 0, "dist_timeout must be positive"),
        (c.dist_byzantine in ("server", "ranks"), "dist_byzantine must be server or ranks"),
        (all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in c.lr_milestones),
         "lr_milestones must be a list of positive step numbers"),
    ]


def _check_choices(c: Config) -> None:
    """Names that registries resolve (schedule, split, engine, rule), the device and the output folder."""
    from simulator.core.engines import ENGINES
    from simulator.core.partition import MODES
    from simulator.core.schedule import SCHEDULES
    import aggregators

    SCHEDULES.get(c.lr_schedule)
    MODES.get(c.heterogeneity)
    ENGINES.get(c.engine)
    try:
        torch.device(c.device)
    except RuntimeError:
        raise UserException(f"Invalid configuration: unknown device {c.device!r} "
                            "(use e.g. cpu, cuda or cuda:1).") from None
    told = min(c.real_byz, c.per_round) if c.known_f else c.nb_decl_byz  # the largest f a round tells
    aggregators.get(c.aggregator).check(c.per_round, told)
    output = Path(c.output)
    if output.exists() and not output.is_dir():
        raise UserException(f"Invalid configuration: output {c.output!r} exists and is not a folder.")


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
