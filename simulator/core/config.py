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
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch

import aggregators
import attacks
from experiments import datasets, models
from experiments.grammar import format_spec, parse_spec
from experiments.plugin import coerce
from experiments.loss import LOSSES, criterion_names
from experiments.tools import UnavailableException, UserException, did_you_mean
from simulator.core import identity as _identity
from simulator.core.decentralised.gossip import gossip_rule
from simulator.core.decentralised.topologies import TOPOLOGIES
from simulator.core.config_checks import ranges, relations
from simulator.core.decentralised import checks as decentralised_checks
from simulator.core.engines import ENGINES
from simulator.core.execution import EXECUTIONS
from simulator.core.server import SERVER_OPTIMIZERS
from simulator.core.legacy import upgrade
from simulator.core.optim import LOOKAHEAD, PLACEMENTS
from simulator.core.heterogeneity import MODES
from simulator.core.privacy import PRIVACY
from simulator.core.schedules import SCHEDULES
from simulator.core.seeding import generator

MOMENTUM_PLACEMENTS = PLACEMENTS  # where momentum acts (`simulator.core.optim`)
NESTEROV = (False, True, LOOKAHEAD)

# Default model for each dataset when `model` is left empty.
DEFAULT_MODELS = {
    "digits": "simples-digits",
    "mnist": "simples-conv",
    "fashionmnist": "simples-conv",
    "cifar10": "simples-cifar",
    "cifar100": "simples-cifar",  # its last layer takes the dataset's 100 classes
}



def _aggregator(spec: str, generator: torch.Generator | None = None) -> object:
    """A rule or chain (`aggregators.get`), or, named alone, a gossip rule of decentralised runs."""
    return gossip_rule(spec) or aggregators.get(spec, generator=generator)


# The spec fields built by a registry (aggregators and attacks by their packages), each parsed once.
PARTS = {"aggregator": _aggregator, "attack": attacks.get, "heterogeneity": MODES.build,
         "lr_schedule": SCHEDULES.build, "server_opt": SERVER_OPTIMIZERS.build, "engine": ENGINES.build,
         "execution": EXECUTIONS.build, "privacy": PRIVACY.build, "topology": TOPOLOGIES.build}


class Named(NamedTuple):
    """A model or criterion spec, parsed: the name and its keyword arguments (checked when built)."""

    name: str
    params: dict

    @property
    def identity(self) -> str:
        """The spec with its arguments sorted: one text per model or criterion."""
        return format_spec(self.name, dict(sorted(self.params.items())))


def _named(spec: str, kind: str) -> Named:
    """Parse a model or criterion spec (``top-k(k=5)``) and check that the name exists."""
    (name, params), = parse_spec(spec, kind)
    if kind == "model":
        models.constructor(name)
    elif name not in criterion_names():
        raise UnavailableException("criterion", name, criterion_names())
    return Named(name, params)


def _f(default: Any, help: str, within: str | None = None, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field carrying its CLI help text and its range: an interval (``"[0, 1)"``) or choices."""
    return field(default=default, metadata={"help": help, "within": within, "choices": choices})


@dataclass
class Config:
    """Everything that defines one simulated training run."""

    # Data and model
    dataset: str = _f("digits", 'dataset spec, e.g. "fashionmnist" or "fashionmnist(flip=true,normalise=false)": '
                                "flip mirrors each training sample when drawn and each test image at each "
                                "evaluation with probability 1/2 (default false), normalise standardises the "
                                "pixels (default true; false keeps them in [0, 1]) (see `byzsim list datasets`)")
    data_root: str | None = _f(None, "folder holding the dataset files (default: BYZSIM_DATA or the standard places)")
    model: str | None = _f(None, 'model spec, e.g. "simples-conv" or "simples-logit(in_features=64)" (default: '
                                 "the dataset's default model)")
    loss: str = _f("crossentropy", "training loss: " + " or ".join(LOSSES), choices=tuple(LOSSES))
    criterion: str = _f("top-k", 'evaluation criterion spec: "top-k", "top-k(k=5)" or "sigmoid"')
    # Workers
    nb_workers: int = _f(11, "total number of workers n (honest + Byzantine)", "[1, inf)")
    nb_decl_byz: int = _f(2, "declared number of Byzantine workers f, as the aggregator is told", "[0, inf)")
    nb_real_byz: int | None = _f(None, "real number of attacking workers (default: the declared number)", "[0, inf)")
    # Defence and attack
    aggregator: str = _f("average", 'aggregator spec, e.g. "krum", "nnm>krum", "bucketing(s=2)>cclip(tau=10)"')
    attack: str = _f("none", 'attack spec, e.g. "alie", "alie(z=1.5)" (see `byzsim list`)')
    # Optimisation
    batch_size: int = _f(32, "mini-batch size of each worker", "[1, inf)")
    test_batch_size: int = _f(1024, "batch size used to evaluate on the whole test set", "[1, inf)")
    steps: int = _f(300, "number of training steps", "[1, inf)")
    lr: float = _f(0.1, "initial learning rate", "(0, inf)")
    lr_schedule: str = _f("constant", 'learning-rate schedule spec, e.g. "step(milestones=[100,200])" (see `byzsim '
                                      'list schedules`)')
    momentum: float = _f(0.0, "momentum factor (0 disables it)", "[0, 1)")
    momentum_at: str = _f("update", "where momentum is applied: worker (each worker's buffer), server (before "
                                    "the rule, each vector plus momentum times the last aggregate, as "
                                    "ByzantineMomentum), aggregate (a buffer on the aggregate, torch's SGD) or "
                                    "update (a buffer on lr times the aggregate)", choices=MOMENTUM_PLACEMENTS)
    dampening: float = _f(0.0, "momentum dampening", "[0, 1]")
    nesterov: bool | str = _f(False, 'Nesterov momentum: true (torch\'s form, g + mu m) or "lookahead" (gradients '
                                     "taken at the look-ahead point, as ByzantineMomentum)", choices=NESTEROV)
    weight_decay: float = _f(0.0, "weight decay applied by the server at the update", "[0, inf)")
    l2: float = _f(0.0, "l2 regularisation: honest workers add l2 * params to their gradients", "[0, inf)")
    clip: float | None = _f(None, "clip each honest worker's gradient to this l2 norm", "(0, inf)")
    privacy: str = _f("none", 'differential privacy: "dpsgd(clip=1.0,sigma=1.0,delta=1e-5)" (each honest worker '
                              "clips every sample's gradient and adds Gaussian noise before it sends, in every local "
                              'step of a federated round) or "dpfedavg(clip=0.1,sigma=1.0)" (clipped client updates, '
                              "noise on the aggregate; adaptive=true for adaptive clipping); epsilon=E in place of "
                              "sigma calibrates the noise; epsilon is recorded at every evaluation (needs Opacus: "
                              "pip install 'byzsim[privacy]'; see `byzsim list privacy`, docs/privacy.md)")
    # Federated rounds (all off by default: one gradient per worker per step, every worker every step)
    local_steps: int = _f(1, "federated: local SGD steps K each selected client takes per round; it sends its "
                             "update w_K - w", "[1, inf)")
    local_lr: float | None = _f(None, "federated: the clients' local step size (default: the scheduled lr)", "(0, inf)")
    local_momentum: float = _f(0.0, "federated: heavy-ball momentum of the local steps, reset every round", "[0, 1)")
    local_batches: str = _f("fresh", "federated: fresh (each local step draws the client's next batch) or "
                                     "same (every local step of a round reuses one batch)", choices=("fresh", "same"))
    clients: int | None = _f(None, "federated: the pool of N clients, the last nb_real_byz of them Byzantine "
                                   "(default: no pool, every worker takes part in every step)", "[1, inf)")
    clients_per_round: int | None = _f(None, "federated: clients m sampled each round from the pool", "[1, inf)")
    participation: float | None = _f(None, "federated: the fraction p of the pool sampled each round", "(0, 1]")
    known_f: bool = _f(False, "federated: tell the rule the round's real number of Byzantine clients f_t instead "
                              "of the declared f")
    server_opt: str = _f("sgd", 'federated: the server\'s optimiser on -aggregate, e.g. "sgd" (FedAvg) or '
                                '"adam(lr=0.01)" (FedOpt; see `byzsim list server-optimisers`)')
    # Decentralised learning (off by default: a server combines the workers' vectors)
    topology: str | None = _f(None, 'decentralised: the communication graph, e.g. "ring", "torus(rows=4)", '
                                    '"erdos-renyi(p=0.3,byzantine=degree)"; every honest node keeps its own model and '
                                    "gossips with its neighbours through the aggregator (a gossip rule such as "
                                    "clippedgossip, or any rule applied to each neighbourhood) (see `byzsim list "
                                    "topologies`; default: none, a server)")
    eval_nodes: int | None = _f(None, "decentralised: how many honest nodes' own models each evaluation tests (their "
                                      "mean and worst accuracy), drawn once; default: every honest node", "[1, inf)")
    # Heterogeneity
    heterogeneity: str = _f("iid", 'data split spec, e.g. "dirichlet(alpha=0.3)" (see `byzsim list heterogeneity`)')
    validation_split: float = _f(0.0, "fraction of the training set held out as a validation set, evaluated "
                                      "beside the test set (for hyperparameter selection); 0 keeps it all", "[0, 1)")
    # Bookkeeping
    eval_every: int = _f(50, "evaluate on the test set every this many steps (and at the first and last)", "[1, inf)")
    checkpoint_every: int = _f(100, "write a resumable checkpoint every this many steps", "[1, inf)")
    seed: int = _f(1, "seed of every random generator of the run", "[0, inf)")
    device: str = _f("cpu", 'torch device, e.g. "cpu", "cuda", "cuda:1"')
    engine: str = _f("fastest", 'gradient engine spec: "fastest" takes the fastest engine for the model\'s layers on '
                                'the device; e.g. "vmap(chunk_size=8)" or "grouped(memory_budget=4)" (GiB; default 80%% '
                                "of a GPU's free memory) (see `byzsim list engines`)")
    execution: str = _f("local", 'where the workers compute: "local", or "torchrun(timeout=300)" under torchrun')
    output: str = _f("results/runs", "folder under which the run's folder is created")

    def __post_init__(self) -> None:
        _check_types(self)
        self.parts: dict[str, Any] = {}
        for name in ("dataset", *PARTS, "model", "criterion"):  # the dataset first: it names the default model
            self._build(name)

    def __setattr__(self, name: str, value: Any) -> None:
        """Setting a field after construction re-parses its spec and asks for a new validation."""
        super().__setattr__(name, value)
        if "parts" in self.__dict__ and name in DEFAULTS:
            self.__dict__.pop("_valid", None)
            if name in ("dataset", *PARTS, "model", "criterion"):
                self._build(name)
            if name in ("seed", "dataset"):  # the aggregator's generator, the default model
                self._build("aggregator" if name == "seed" else "model")

    def _build(self, name: str) -> None:
        """Parse and check one spec field once; keep the built part and print the spec canonically.

        The aggregator is built with the run's own generator, so a run copies it rather than parse it again.
        """
        spec = getattr(self, name)
        if name == "dataset":  # a `Pipeline`: the name, flips and normalisation
            self.parts[name] = part = datasets.parse(spec)
            spec = part.spec
        elif name in PARTS and spec is None:  # an optional part left out (no topology: a server's run)
            self.parts.pop(name, None)
        elif name in PARTS:
            extra = {"generator": generator(self.seed, "aggregator")} if name == "aggregator" else {}
            self.parts[name] = part = PARTS[name](spec, **extra)
            spec = part.spec
        elif spec is not None:
            self.parts[name] = part = _named(spec, name)
            spec = part.identity
        elif name == "model":  # the dataset's default model, if it has one (else `model_name` says so)
            self.parts.pop(name, None)
            if self.dataset_name in DEFAULT_MODELS:
                self.parts[name] = _named(DEFAULT_MODELS[self.dataset_name], name)
        super().__setattr__(name, spec)

    def unmet(self) -> str | None:
        """The rule's unmet requirement on the (n, f) a step gives it, or None: one check for runs and grids."""
        if self.topology is not None:  # each honest node's neighbourhood (`simulator.core.decentralised.checks`)
            return decentralised_checks.unmet(self)
        return self.parts["aggregator"].unmet(*self.rule_size())

    def rule_size(self) -> tuple[int, int]:
        """The n the rule combines each step, and the largest f it is told."""
        return self.per_round, min(self.real_byz, self.per_round) if self.known_f else self.nb_decl_byz

    # ------------------------------------------------------------------ derived
    @property
    def real_byz(self) -> int:
        """Number of workers that really attack."""
        return self.nb_decl_byz if self.nb_real_byz is None else self.nb_real_byz

    @property
    def dataset_name(self) -> str:
        """The dataset's registered name, without the spec's parameters (``fashionmnist``)."""
        return self.parts["dataset"].name

    @property
    def federated(self) -> bool:
        """Whether a step is a federated round (local steps, a client pool or a server optimiser)."""
        return any(getattr(self, k) != DEFAULTS[k] for k in _identity.FEDERATED_FIELDS)

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
        """The model spec: the given one, or the dataset's default model."""
        if "model" not in self.parts:
            raise UserException(f"Dataset {self.dataset_name!r} has no default model: pass --model.")
        return self.parts["model"].identity

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

    def to_saved(self) -> dict:
        """The fields a run folder's config.json keeps: all but ``output`` (the folder is where it is), so that
        ``byzsim train --config RUN/config.json`` reruns the experiment under the output it is given, not
        beside the original."""
        return {k: v for k, v in self.to_dict().items() if k != "output"}

    @classmethod
    def from_dict(cls, data: dict, where: str = "configuration") -> "Config":
        """A validated Config from a dict of fields; old spellings are folded in with a one-line warning."""
        data = cls.upgrade(data, where)
        unknown = sorted(set(data) - set(DEFAULTS))
        if unknown:
            raise UserException(f"Unknown configuration field(s): {', '.join(unknown)}."
                                f"{did_you_mean(unknown[0], DEFAULTS, cutoff=0.75)}")
        return cls(**data).validate()

    @staticmethod
    def upgrade(data: dict, where: str = "configuration", quiet: bool = False) -> dict:
        """``data`` in the spec spelling (`simulator.core.legacy`): old flat fields folded into their specs."""
        dataset = data.get("dataset", DEFAULTS["dataset"])
        name = datasets.parse(dataset).name if isinstance(dataset, str) and dataset.strip() else dataset
        return upgrade(data, {**DEFAULTS, "model": DEFAULT_MODELS.get(name)}, where, quiet)

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        """A Config from a JSON file (a run's config.json) or a TOML file of fields (``.toml``, as grids write them)."""
        toml = str(path).endswith(".toml")
        try:
            text = Path(path).read_text()
            data = tomllib.loads(text) if toml else json.loads(text)
        except FileNotFoundError:
            raise UserException(f"Configuration file {str(path)!r} does not exist.") from None
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
            raise UserException(f"Configuration file {str(path)!r} is not valid {'TOML' if toml else 'JSON'}: "
                                f"{err}.") from None
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
        if self.dataset_name not in datasets.REGISTRY:  # before anything needs its default model or its files
            raise UnavailableException("dataset", self.dataset_name, datasets.names())
        for ok, message in ranges(self) + relations(self):
            if not ok:
                raise UserException(f"Invalid configuration: {message}.")
        try:
            torch.device(self.device)
        except RuntimeError:
            raise UserException(f"Invalid configuration: unknown device {self.device!r} "
                                "(use e.g. cpu, cuda or cuda:1).") from None
        if self.topology is None:
            self.parts["aggregator"].check(*self.rule_size())
        else:  # the graph, and the rule at each honest node (`simulator.core.decentralised.checks`)
            decentralised_checks.check(self)
        if Path(self.output).exists() and not Path(self.output).is_dir():
            raise UserException(f"Invalid configuration: output {self.output!r} exists and is not a folder.")
        self.__dict__["_valid"] = True
        return self


DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Config)}  # every field's default


@functools.cache
def _hints() -> dict[str, Any]:
    return typing.get_type_hints(Config)


def _typed(name: str, value: object) -> object:
    """``value`` as field ``name``'s annotated type, converted as a plug-in's parameters are; floats finite."""
    value = coerce("Configuration", name, _hints()[name], value, text=False)
    if isinstance(value, float) and not math.isfinite(value):
        raise UserException(f"Configuration: parameter {name!r} must be a finite number, got {value!r}.")
    return value


def type_error(name: str, value: object) -> str | None:
    """Why ``value`` cannot be field ``name``, or None if it can."""
    try:
        _typed(name, value)
    except UserException as err:
        return str(err).rstrip(".")
    return None


def _check_types(config: Config) -> None:
    """Every field holds a value of its annotated type (1 becomes 1.0 for a float field, so ids agree)."""
    for name in _hints():
        config.__dict__[name] = _typed(name, config.__dict__[name])
