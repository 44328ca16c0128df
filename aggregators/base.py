"""Base classes and registry of aggregation rules and pre-aggregation steps.

A `Step` declares its parameters as annotated class attributes with defaults
(``tau: float = 10.0``), states its requirement on (n, f) once as text through
`requirement`, and keeps any state in the object. `Rule` turns [n, d] into [d];
`PreAggregation` turns [n, d] into [n', d] and says what (n', f') the next step
sees. The checks, the input validation, the no-alias guarantee, `trial` and the
state protocol live here, in one place, for every rule.
"""
from __future__ import annotations

import numbers
import typing
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from aggregators.spec import format_step
from experiments.tools import UserException

__all__ = ["Step", "Rule", "PreAggregation", "register", "REGISTRY", "DEFAULT_SEED"]

REGISTRY: dict[str, type["Step"]] = {}
DEFAULT_SEED = 0x5EED


def register(name: str) -> Callable[[type["Step"]], type["Step"]]:
    """Class decorator adding a rule or pre-aggregation step under ``name``."""
    def decorate(cls: type[Step]) -> type[Step]:
        if name in REGISTRY:
            raise RuntimeError(f"aggregator {name!r} registered twice")
        cls.name = name
        REGISTRY[name] = cls
        return cls
    return decorate


def _coerce(owner: str, key: str, kind: Any, value: object) -> object:
    """``value`` as the declared type ``kind`` (int, float, bool, str, or Optional of one)."""
    args = typing.get_args(kind)
    if args and type(None) in args:
        if value is None:
            return None
        kind = next(a for a in args if a is not type(None))
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise UserException(f"{owner}: parameter {key!r} expects {kind.__name__}, got {value!r}.")


class Step:
    """Common part of rules and pre-aggregation steps: parameters, spec, state."""

    name: ClassVar[str] = "step"
    randomised: ClassVar[bool] = False

    def __init__(self, *, generator: torch.Generator | None = None, **params: object) -> None:
        declared = self.parameters()
        unknown = sorted(set(params) - set(declared))
        if unknown:
            known = ", ".join(declared) or "none"
            raise UserException(f"{self.name} has no parameter {unknown[0]!r} (its parameters: {known}).")
        hints = typing.get_type_hints(type(self))
        self._given: dict[str, object] = {}
        for key, default in declared.items():
            value = _coerce(self.name, key, hints[key], params[key]) if key in params else default
            setattr(self, key, value)
            if key in params and value != default:
                self._given[key] = value
        if self.randomised and generator is None:
            generator = torch.Generator().manual_seed(DEFAULT_SEED)
        self.generator = generator
        self._initial_generator_state = generator.get_state() if generator is not None else None
        self.validate()
        self.reset()

    @classmethod
    def parameters(cls) -> dict[str, object]:
        """Declared parameters and their defaults, in declaration order."""
        hints = typing.get_type_hints(cls)
        found: dict[str, object] = {}
        for klass in reversed(cls.__mro__):
            for key in klass.__dict__.get("__annotations__", {}):
                if typing.get_origin(hints.get(key)) is not ClassVar and not key.startswith("_"):
                    found[key] = getattr(cls, key)
        return found

    @classmethod
    def summary(cls) -> str:
        """First line of the docstring: the one-line description for listings."""
        return (cls.__doc__ or cls.name).strip().splitlines()[0]

    @property
    def spec(self) -> str:
        """Canonical spec: the name and the parameters that differ from their defaults."""
        return format_step(self.name, self._given)

    def __str__(self) -> str:
        return self.spec

    def __repr__(self) -> str:
        return f"aggregators.get({self.spec!r})"

    # Hooks for subclasses -------------------------------------------------
    def validate(self) -> None:
        """Raise `UserException` for parameter values out of range."""

    def requirement(self, n: int, f: int) -> str | None:
        """The unmet requirement on (n, f) as text (e.g. ``"n >= 2f + 3"``), or None."""
        return None

    def reset(self) -> None:
        """Forget all state (rewinding the generator to its state at construction)."""
        if self.generator is not None:
            self.generator.set_state(self._initial_generator_state)

    def own_state(self) -> dict[str, object]:
        """State other than the generator (e.g. cclip's centre); tensors never mutated in place."""
        return {}

    def load_own_state(self, state: dict[str, object]) -> None:
        """Restore what `own_state` returned."""

    # Checks ----------------------------------------------------------------
    def unmet(self, n: int, f: int) -> str | None:
        """The requirement text when (n, f) does not satisfy it, else None."""
        if n < 1 or f < 0:
            return "n >= 1 and f >= 0"
        return self.requirement(n, f)


def _validate_input(owner: str, gradients: torch.Tensor, f: int) -> None:
    if not isinstance(gradients, torch.Tensor) or gradients.dim() != 2 or gradients.shape[1] < 1:
        shape = tuple(gradients.shape) if isinstance(gradients, torch.Tensor) else type(gradients).__name__
        raise UserException(f"{owner} expects a [n, d] tensor of gradients, got {shape}.")
    if not gradients.is_floating_point():
        raise UserException(f"{owner} expects floating-point gradients, got {gradients.dtype}.")
    if isinstance(f, bool) or not isinstance(f, numbers.Integral):
        raise UserException(f"{owner} expects an integer f, got {f!r}.")


class Rule(Step):
    """An aggregation rule: [n, d] gradients and f to one [d] vector."""

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        """The rule's definition; called after the checks, may update state."""
        raise NotImplementedError

    def check(self, n: int, f: int) -> None:
        """Raise `UserException` naming the rule and its requirement when (n, f) fails it."""
        unmet = self.unmet(n, f)
        if unmet is not None:
            raise UserException(f"{self.spec} requires {unmet}, got n = {n}, f = {f}.")

    def __call__(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        _validate_input(self.spec, gradients, f)
        f = int(f)  # numpy integers too
        self.check(gradients.shape[0], f)
        low_precision = gradients.dtype in (torch.float16, torch.bfloat16)
        work = gradients.float() if low_precision else gradients
        out = self.aggregate(work, f)
        if low_precision:
            out = out.to(gradients.dtype)
        elif out.untyped_storage().data_ptr() == gradients.untyped_storage().data_ptr():
            out = out.clone()
        return out

    def trial(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        """What `__call__` would return, leaving every state (centre, generator) unchanged."""
        saved = self.state_dict()
        try:
            return self(gradients, f)
        finally:
            self.load_state_dict(saved)

    def generators(self) -> list[torch.Generator]:
        """The distinct generators this rule draws from."""
        return [self.generator] if self.generator is not None else []

    def state_dict(self) -> dict[str, object]:
        """Everything a resumed run needs to continue exactly."""
        gens = self.generators()
        return {"spec": self.spec, "generator": gens[0].get_state() if gens else None,
                "steps": [self.own_state()]}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore a `state_dict` taken from a rule with the same spec."""
        if state.get("spec") != self.spec:
            raise UserException(f"This state belongs to aggregator {state.get('spec')!r}, not {self.spec!r}.")
        for gen in self.generators():
            gen.set_state(state["generator"])
        self._load_steps(state["steps"])

    def _load_steps(self, states: list[dict[str, object]]) -> None:
        self.load_own_state(states[0])


class PreAggregation(Step):
    """A pre-aggregation step: [n, d] to [n', d], placed in front of a rule in a chain."""

    def transform(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        """The step's definition; returns a new [n', d] tensor."""
        raise NotImplementedError

    def output_size(self, n: int, f: int) -> tuple[int, int]:
        """The (n', f') that the next step sees."""
        return n, f
