"""Building rules from specs: `get`, `names`, `describe`, `is_preaggregation`."""
from __future__ import annotations

import torch

from aggregators.base import DEFAULT_SEED, REGISTRY, PreAggregation, Rule
from aggregators.chain import Chain
from experiments.grammar import format_value, parse_spec
from experiments.tools import UserException

__all__ = ["get", "names", "describe", "is_preaggregation"]


names = REGISTRY.names  # every rule and pre-aggregation step, sorted


def describe(name: str) -> str:
    """One line describing ``name`` (for ``byzsim list``)."""
    cls = REGISTRY.get(name)
    kind = "pre-aggregation" if issubclass(cls, PreAggregation) else "rule"
    params = ", ".join(f"{k}={format_value(v)}" for k, v in cls.parameters().items())
    return f"{cls.summary()} [{kind}{'; ' + params if params else ''}]"


def is_preaggregation(name: str) -> bool:
    """Whether ``name`` is a pre-aggregation step (goes in front of a rule)."""
    return issubclass(REGISTRY.get(name), PreAggregation)


def get(spec: str, *, generator: torch.Generator | None = None, **params: object) -> Rule:
    """Build the rule or chain described by ``spec``; ``params`` go to its last step.

    ``generator`` seeds every randomised step; when None a generator seeded with a
    fixed default seed is made (reproducible, never the global RNG).
    """
    steps = parse_spec(spec, "aggregator", chain=True)
    name, last = steps[-1]
    overlap = sorted(set(last) & set(params))
    if overlap:
        raise UserException(f"Parameter {overlap[0]!r} of {name} is given both in the spec {spec!r} and by keyword.")
    steps[-1] = (name, {**last, **params})
    for step_name, step_params in steps:
        if "generator" in step_params:
            raise UserException(f"{step_name}: 'generator' is not a parameter; pass generator= to aggregators.get().")
    classes = [REGISTRY.get(step_name) for step_name, _ in steps]
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
