"""A chain of pre-aggregation steps in front of one rule, e.g. ``"nnm>krum"``.

Each step maps [n, d] to [n', d] and reports the (n', f') the next step sees,
the way optax chains gradient transformations; the chain behaves like a rule.
A step that needs the senders' identities (a per-client history) cannot come
after a step that mixes or reorders the vectors: the chain refuses it.
"""
from __future__ import annotations

import torch

from aggregators.base import PreAggregation, Rule, Step
from experiments.tools import UserException

__all__ = ["Chain"]


class Chain(Rule):
    """Pre-aggregation steps followed by a rule, with the interface of a rule."""

    name = "chain"

    def __init__(self, steps: list[PreAggregation], rule: Rule, generator: torch.Generator | None) -> None:
        self.steps = list(steps)
        self.rule = rule
        self.generator = generator

    @property
    def spec(self) -> str:
        return ">".join(step.spec for step in self.parts())

    @property
    def canonical(self) -> str:
        return ">".join(step.canonical for step in self.parts())

    @property
    def identity(self) -> str:
        """What a run id hashes: every step's identity (parameters with defaults filled, see `Plugin.identity`)."""
        return ">".join(step.identity for step in self.parts())

    def parts(self) -> list[Step]:
        return [*self.steps, self.rule]

    def check(self, n: int, f: int) -> None:
        self.check_senders()
        n_in, f_in = n, f
        for position, step in enumerate(self.parts()):
            unmet = step.unmet(n, f)
            if unmet is not None:
                where = ""
                if position:
                    before = ">".join(s.spec for s in self.steps[:position])
                    where = f" after {before} (which received n = {n_in}, f = {f_in})"
                raise UserException(f"{step.spec} in {self.spec!r} requires {unmet}, "
                                    f"got n = {n}, f = {f}{where}.")
            if position < len(self.steps):
                n, f = step.output_size(n, f)

    def check_senders(self) -> None:
        """Refuse a step that needs the senders' identities after a step that mixes or reorders the vectors."""
        mixer = next((step for step in self.steps if not step.keeps_rows), None)
        if mixer is None:
            return
        after = self.parts()[self.parts().index(mixer) + 1:]
        for step in after:
            if "clients" in step.needs:
                raise UserException(f"{step.spec} in {self.spec!r} is a stateful defence without client identities: "
                                    f"{mixer.spec} mixes or reorders the vectors before it; put {step.name} first, "
                                    "or after steps that keep each row in place (clip, arc).")

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        for step in self.steps:
            _, f_next = step.output_size(gradients.shape[0], f)
            gradients, f = step.transform(gradients, f), f_next
        return self.rule.aggregate(gradients, f)

    def reset(self) -> None:
        for step in self.parts():
            step.reset()
