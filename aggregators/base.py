"""Base classes and registry of aggregation rules and pre-aggregation steps.

A `Step` is a `experiments.plugin.Plugin`: it declares its parameters as
annotated class attributes with defaults (``tau: float = 10.0``), states its
requirement on (n, f) once as text through `requirement`, and keeps any state
in the object. `Rule` turns [n, d] into [d]; `PreAggregation` turns [n, d]
into [n', d] and says what (n', f') the next step sees. The checks, the input
validation, the no-alias guarantee, `trial` and the state protocol live here,
in one place, for every rule.

Some rules need more than the vectors and f: who sent each vector (FoolsGold's
per-client history), the server's own update on its root set (FLTrust), the
global parameters and the server's step (CRFL). A step declares what it reads
in ``needs`` (names of `RoundInfo` fields); the caller hands the round's
`RoundInfo` to the rule with `Rule.inform` before calling it (the simulator
does so each step before the attack, so adaptive attacks' `trial` sees the
same round), and a rule called without what it needs raises `UserException`.
Rules that need nothing are called as before.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch

from experiments.plugin import Plugin
from experiments.registry import Registry
from experiments.tools import UserException

__all__ = ["Step", "Rule", "PreAggregation", "RoundInfo", "register", "REGISTRY", "DEFAULT_SEED"]

REGISTRY: Registry[type["Step"]] = Registry("aggregator", packages=("aggregators.rules", "aggregators.preaggregation"))
register = REGISTRY.register
DEFAULT_SEED = 0x5EED


@dataclass(frozen=True)
class RoundInfo:
    """What a rule may know about the round besides the [n, d] vectors and f; a field not needed stays None.

    Fields:
        clients: int64 [n], the identity of the sender of each row, stable across rounds (the simulator's:
            honest workers or clients 0..h-1 by index, then a Byzantine one nb_honest + its index).
        reference: [d], the server's own update on its root set, computed as the workers compute theirs.
        params: [d], the global model's flat parameters before this step's update.
        lr: the server's step on the aggregate: the next parameters are ``params - lr * aggregate``
            (negative in a federated round, whose server steps on -aggregate with its own lr).
        step: the index of this step (federated round), counted from 0.
    """

    clients: torch.Tensor | None = None
    reference: torch.Tensor | None = None
    params: torch.Tensor | None = None
    lr: float | None = None
    step: int = 0

    @classmethod
    def stand_in(cls, n: int, d: int) -> "RoundInfo":
        """A round for callers that run no training (a probe, the registry-wide tests): senders 0..n-1, the
        reference the unit vector along (1, ..., 1), parameters zero, lr 1, step 0."""
        return cls(clients=torch.arange(n), reference=torch.full((d,), 1 / math.sqrt(d)), params=torch.zeros(d),
                   lr=1.0)


NEEDS = {"clients": "the identity of each vector's sender", "reference": "the server's own update (its root set)",
         "params": "the global parameters", "lr": "the server's step size"}  # what a step may declare in `needs`


class Step(Plugin):
    """Common part of rules and pre-aggregation steps: parameters, spec, state."""

    name: ClassVar[str] = "step"
    family: ClassVar[str] = "aggregator"
    randomised: ClassVar[bool] = False
    bound: ClassVar[tuple[int, int] | None] = None  # (a, b): the default `requirement` is n >= af + b
    state_keys: ClassVar[tuple[str, ...]] = ()  # attributes holding state: None after `reset`, kept by `own_state`
    needs: ClassVar[frozenset[str]] = frozenset()  # the `RoundInfo` fields the step reads (keys of `NEEDS`)

    def __init__(self, *, generator: torch.Generator | None = None, **params: object) -> None:
        super().__init__(**params)
        if self.randomised and generator is None:
            generator = torch.Generator().manual_seed(DEFAULT_SEED)
        self.generator = generator
        self._initial_generator_state = generator.get_state() if generator is not None else None
        self.info = RoundInfo()  # this round's, set by `Rule.inform`; not state: each round brings its own
        self.reset()

    def __repr__(self) -> str:
        return f"aggregators.get({self.spec!r})"

    # Hooks for subclasses -------------------------------------------------
    def requirement(self, n: int, f: int) -> str | None:
        """The unmet requirement on (n, f) as text (e.g. ``"n >= 2f + 3"``), or None; by default `bound`'s."""
        if self.bound is None or n >= self.bound[0] * f + self.bound[1]:
            return None
        return "n >= {}f + {}".format(*self.bound)

    def reset(self) -> None:
        """Forget all state (rewinding the generator to its state at construction)."""
        if self.generator is not None:
            self.generator.set_state(self._initial_generator_state)
        for key in self.state_keys:
            setattr(self, key, None)

    def own_state(self) -> dict[str, object]:
        """State other than the generator (e.g. cclip's centre); tensors never mutated in place."""
        return {key: getattr(self, key) for key in self.state_keys}

    def load_own_state(self, state: dict[str, object]) -> None:
        """Restore what `own_state` returned."""
        for key in self.state_keys:
            setattr(self, key, state[key])

    def root_samples(self) -> int:
        """Training samples the server holds out for its own update (FLTrust's root set); 0 for most steps."""
        return 0

    def gaussian(self, sigma: float, like: torch.Tensor) -> torch.Tensor:
        """N(0, sigma^2) noise shaped like ``like``, drawn from the step's generator (on its device, then moved)."""
        noise = torch.randn(like.shape, generator=self.generator, device=self.generator.device, dtype=like.dtype)
        return noise.to(like.device).mul_(sigma)

    def random_columns(self, gradients: torch.Tensor, k: int) -> torch.Tensor:
        """``gradients`` restricted to k coordinates drawn from the step's generator (all of them when k >= d)."""
        d = gradients.shape[1]
        if k >= d:
            return gradients
        index = torch.randperm(d, generator=self.generator, device=self.generator.device)[:k]
        return gradients[:, index.to(gradients.device)]

    # Checks ----------------------------------------------------------------
    def unmet(self, n: int, f: int) -> str | None:
        """The requirement text when (n, f) does not satisfy it, else None."""
        if n < 1 or f < 0:
            return "n >= 1 and f >= 0"
        return self.requirement(n, f)


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
        if not isinstance(gradients, torch.Tensor) or gradients.dim() != 2 or gradients.shape[1] < 1:
            shape = tuple(gradients.shape) if isinstance(gradients, torch.Tensor) else type(gradients).__name__
            raise UserException(f"{self.spec} expects a [n, d] tensor of gradients, got {shape}.")
        if not gradients.is_floating_point():
            raise UserException(f"{self.spec} expects floating-point gradients, got {gradients.dtype}.")
        if isinstance(f, bool) or not isinstance(f, numbers.Integral):
            raise UserException(f"{self.spec} expects an integer f, got {f!r}.")
        f = int(f)  # numpy integers too
        self.check(gradients.shape[0], f)
        self.check_round(*gradients.shape)
        low_precision = gradients.dtype in (torch.float16, torch.bfloat16)
        work = gradients.float() if low_precision else gradients
        out = self.aggregate(work, f)
        if low_precision:
            out = out.to(gradients.dtype)
        elif out.untyped_storage().data_ptr() == gradients.untyped_storage().data_ptr():
            out = out.clone()
        return out

    def inform(self, info: RoundInfo) -> None:
        """Tell every step what it may know about the coming calls (`RoundInfo`); it holds until the next call.

        A pre-aggregation step that does not keep its rows in place (bucketing, nnm) hides the senders from
        the steps after it.
        """
        for step in self.parts():
            step.info = info
            if isinstance(step, PreAggregation) and not step.keeps_rows and info.clients is not None:
                info = dataclasses.replace(info, clients=None)

    def needed(self) -> frozenset[str]:
        """The `RoundInfo` fields some step of this rule reads: what a caller must build each round."""
        return frozenset().union(*(step.needs for step in self.parts()))

    def root_set_size(self) -> int:
        """Training samples the server holds out for its own update (0: none)."""
        return max(step.root_samples() for step in self.parts())

    def check_round(self, n: int, d: int) -> None:
        """Raise `UserException` when a step lacks a `RoundInfo` field it needs, or has one of the wrong size."""
        for step in self.parts():
            for name in sorted(step.needs):
                value = getattr(step.info, name)
                if value is None:
                    raise UserException(f"{step.spec} needs {NEEDS[name]}, which it was not given: call "
                                        f"rule.inform(RoundInfo({name}=...)) first (byzsim runs do).")
                size = {"clients": n, "reference": d, "params": d}.get(name)
                if size is not None and tuple(value.shape) != (size,):
                    raise UserException(f"{step.spec} was given {name} of shape {tuple(value.shape)} "
                                        f"for a round of {n} vectors of {d} coordinates.")

    def trial(self, gradients: torch.Tensor, f: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """What `__call__` would return, leaving every state (centre, generator) unchanged.

        With ``generator``, the randomised steps (bucketing's permutation, DnC's
        subsets...) draw from it instead of the rule's own generator: an attacker
        trying candidates with its own randomness, who cannot predict the
        server's draws. Without, the trial replays the rule's own next draws: an
        attacker who knows the server's randomness.
        """
        saved = self.state_dict()
        try:
            with self._drawing_from(generator):
                return self(gradients, f)
        finally:
            self.load_state_dict(saved)

    @contextlib.contextmanager
    def _drawing_from(self, generator: torch.Generator | None) -> Iterator[None]:
        """Inside the block, every randomised step draws from ``generator`` (None: no change)."""
        randomised = [step for step in self.parts() if step.generator is not None] if generator is not None else []
        own = [step.generator for step in randomised]
        for step in randomised:
            step.generator = generator
        try:
            yield
        finally:
            for step, gen in zip(randomised, own):
                step.generator = gen

    def parts(self) -> list[Step]:
        """The steps of this rule in chain order (a plain rule is one step)."""
        return [self]

    def generators(self) -> list[torch.Generator]:
        """The distinct generators this rule draws from."""
        found: list[torch.Generator] = []
        for step in self.parts():
            if step.generator is not None and all(step.generator is not g for g in found):
                found.append(step.generator)
        return found

    def state_dict(self) -> dict[str, object]:
        """Everything a resumed run needs to continue exactly."""
        gens = self.generators()
        return {"spec": self.spec, "generator": gens[0].get_state() if gens else None,
                "steps": [step.own_state() for step in self.parts()]}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore a `state_dict` taken from a rule with the same spec."""
        if state.get("spec") != self.spec:
            raise UserException(f"This state belongs to aggregator {state.get('spec')!r}, not {self.spec!r}.")
        for gen in self.generators():
            gen.set_state(state["generator"])
        for step, own in zip(self.parts(), state["steps"]):
            step.load_own_state(own)


class PreAggregation(Step):
    """A pre-aggregation step: [n, d] to [n', d], placed in front of a rule in a chain."""

    keeps_rows: ClassVar[bool] = False  # whether output row i is still input row i's sender's vector (clip, arc)

    def transform(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        """The step's definition; returns a new [n', d] tensor."""
        raise NotImplementedError

    def output_size(self, n: int, f: int) -> tuple[int, int]:
        """The (n', f') that the next step sees."""
        return n, f
