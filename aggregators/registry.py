"""Building rules from specs: `get`, `names`, `describe`, `is_preaggregation`."""
from __future__ import annotations

import importlib
import pkgutil

import torch

from aggregators.base import DEFAULT_SEED, REGISTRY, PreAggregation, Rule, Step
from aggregators.chain import Chain
from aggregators.spec import parse
from experiments.tools import UnavailableException, UserException

__all__ = ["get", "names", "describe", "is_preaggregation"]

_PACKAGES = ("aggregators.rules", "aggregators.preaggregation")
_loaded = False


def _discover() -> dict[str, type[Step]]:
    """Import every module of the rule and pre-aggregation packages (once)."""
    global _loaded
    if not _loaded:
        for package_name in _PACKAGES:
            package = importlib.import_module(package_name)
            for info in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{package_name}.{info.name}")
        _loaded = True
    return REGISTRY


def names() -> list[str]:
    """Every rule and pre-aggregation step, sorted."""
    return sorted(_discover())


def _lookup(name: str) -> type[Step]:
    registry = _discover()
    if name not in registry:
        raise UnavailableException("aggregator", name, registry)
    return registry[name]


def describe(name: str) -> str:
    """One line describing ``name`` (for ``byzsim list``)."""
    cls = _lookup(name)
    kind = "pre-aggregation" if issubclass(cls, PreAggregation) else "rule"
    params = ", ".join(f"{k}={v}" for k, v in cls.parameters().items())
    return f"{cls.summary()} [{kind}{'; ' + params if params else ''}]"


def is_preaggregation(name: str) -> bool:
    """Whether ``name`` is a pre-aggregation step (goes in front of a rule)."""
    return issubclass(_lookup(name), PreAggregation)


def get(spec: str, *, generator: torch.Generator | None = None, **params: object) -> Rule:
    """Build the rule or chain described by ``spec``; ``params`` go to its last step.

    ``generator`` seeds every randomised step; when None a generator seeded with a
    fixed default seed is made (reproducible, never the global RNG).
    """
    steps = parse(spec)
    name, last = steps[-1]
    overlap = sorted(set(last) & set(params))
    if overlap:
        raise UserException(f"Parameter {overlap[0]!r} of {name} is given both in the spec {spec!r} and by keyword.")
    steps[-1] = (name, {**last, **params})
    for step_name, step_params in steps:
        if "generator" in step_params:
            raise UserException(f"{step_name}: 'generator' is not a parameter; pass generator= to aggregators.get().")
    classes = [_lookup(step_name) for step_name, _ in steps]
    if any(cls.randomised for cls in classes) and generator is None:
        generator = torch.Generator().manual_seed(DEFAULT_SEED)
    built = [cls(generator=generator if cls.randomised else None, **p) for cls, (_, p) in zip(classes, steps)]
    *pre, rule = built
    for step in pre:
        if not isinstance(step, PreAggregation):
            raise UserException(f"{step.name} is an aggregation rule; only pre-aggregation steps can come "
                                f"before '>' in {spec!r}.")
    if not isinstance(rule, Rule):
        raise UserException(f"{rule.name} is a pre-aggregation step; end the spec with an aggregation rule, "
                            f"e.g. '{rule.spec}>average'.")
    return Chain(pre, rule, generator) if pre else rule
