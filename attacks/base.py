"""What every attack is: the context it receives, the base classes, the registry.

An attack is an `experiments.plugin.Plugin` (declared, typed parameters and a
canonical spec such as ``alie(z=1.5)``) with one entry point,
``attack.byzantine(honest, f, ctx) -> [f, d]``: the Byzantine vectors of one
step. Its class says how it makes them:

- a `GradientAttack` forges them from the honest vectors ``[h, d]`` as the
  server sees them (ALIE, IPM, ...); those that reverse their own honest
  gradient (bit flip) read ``ctx.own()``, computed on demand;
- a `DataAttack` poisons the Byzantine workers' batches, whose gradients are
  then computed honestly (``ctx.vectors(self.poison)``; label flipping);
  ``none`` is the data attack that poisons nothing, so its workers behave
  honestly.

Every attack also takes a schedule, ``begin``, ``end`` and ``every`` (steps,
or federated rounds, counted from 0): it attacks at steps ``begin``,
``begin + every``, ... before ``end`` (exclusive, as in ``range``; none: to the
run's end), so ``begin=k,end=k+1`` is a single shot at step k. FLPoison's
strategies (its ``attack_strategy``: continuous, single-shot, fixed-frequency
with ``poison_frequency = 5``) are ``begin``, ``begin=k,end=k+1`` and
``every=5``. At a step it does not attack, the Byzantine workers behave
honestly: they send ``ctx.own()``, their honest vectors on their own batches.
The simulator calls `Attack.send`, which applies the schedule; ``byzantine``
itself always attacks. The schedule is declared `Plugin.added`, so runs made
before it keep their ids.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch

from experiments.plugin import Plugin
from experiments.registry import Registry
from experiments.tools import UserException

__all__ = ["AttackContext", "Attack", "GradientAttack", "DataAttack", "REGISTRY", "SCHEDULE", "register"]

REGISTRY: Registry[type["Attack"]] = Registry("attack", packages=("attacks",))
register = REGISTRY.register

Poison = Callable[[torch.Tensor, torch.Tensor, "int | None"], tuple[torch.Tensor, torch.Tensor]]


class AttackContext:
    """What the simulator tells an attack besides the honest vectors.

    Args:
        nb_workers: n, all workers (honest and Byzantine).
        decl_f: the f the aggregator is told (declared).
        aggregator: the configured aggregator chain (pre-aggregation included),
            called ``aggregator(gradients[n, d], f) -> [d]``; adaptive attacks use
            its side-effect-free ``trial``.
        generator: the attacker's own randomness (a generator derived from the
            run seed for the attack), never the server's.
        own_gradients: ``[f, d]`` honest vectors of the Byzantine workers on their
            own batches, if already known.
        num_classes: number of classes, for data attacks.
        vectors: ``vectors(poison, momentum)`` -> ``[f, d]``: what the Byzantine
            workers would send honestly on their own batches of this step, after
            ``poison(inputs, targets, num_classes)`` when given (gradient, l2,
            clipping, and worker momentum unless ``momentum`` is false). Where the
            batches live (this process, or the workers' own ranks) is the
            simulator's business.
        step: the index of this step (a federated round), counted from 0; attack
            schedules and attacks that act once read it.
        previous_aggregate: the ``[d]`` output of the rule at the previous step
            (None at the first step): what the server applied, as a worker sees
            it from the change of the global model.
        server_lr: the step size the server applies to the aggregate this step
            (the scheduled lr, or a federated server's own lr), for attacks that
            scale their vectors to move the model by a chosen amount.
        federated: whether this step is a federated round: the vectors are local
            updates w_K - w, which the server adds times its own lr ``server_lr``;
            otherwise they are gradients, which the server subtracts times the lr a
            worker's own step would take.
    """

    def __init__(self, nb_workers: int, decl_f: int, aggregator: object | None, generator: torch.Generator | None,
                 own_gradients: torch.Tensor | None = None, num_classes: int | None = None,
                 vectors: Callable[[Poison | None, bool], torch.Tensor] | None = None, step: int = 0,
                 previous_aggregate: torch.Tensor | None = None, server_lr: float | None = None,
                 federated: bool = False) -> None:
        self.nb_workers, self.decl_f, self.aggregator, self.generator = nb_workers, decl_f, aggregator, generator
        self.num_classes, self.step = num_classes, step
        self.previous_aggregate, self.server_lr, self.federated = previous_aggregate, server_lr, federated
        self._own, self._vectors = own_gradients, vectors

    def vectors(self, poison: Poison | None = None, momentum: bool = True) -> torch.Tensor:
        """The Byzantine workers' honest vectors on their own batches, poisoned first by ``poison``.

        With ``momentum`` false, their worker momentum (if configured) is left out: the raw
        gradients, as ByzFL's and the bucketing paper's Byzantine workers send.
        """
        if self._vectors is None:
            raise ValueError("This attack context holds no Byzantine batches to compute vectors on.")
        return self._vectors(poison, momentum)

    def own(self, momentum: bool = True) -> torch.Tensor:
        """``[f, d]``: the Byzantine workers' honest vectors on their own, unpoisoned batches (computed once)."""
        if self._own is None:
            self._own = self.vectors(None, momentum)
        return self._own

    @property
    def own_gradients(self) -> torch.Tensor:
        """`own()` with worker momentum, as honest workers send."""
        return self.own()


SCHEDULE = ("begin", "end", "every")  # the schedule parameters every attack takes (see the module docstring)


class Attack(Plugin):
    """Base of every attack: parameters, its schedule, state (none by default), and `byzantine`."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = "attack"
    added: ClassVar[tuple[str, ...]] = SCHEDULE  # runs made before schedules keep their ids
    begin: int = 0
    end: int | None = None
    every: int = 1

    def __init_subclass__(cls, **kwargs: object) -> None:
        """A subclass's own `added` parameters join its bases' (the schedule's first)."""
        super().__init_subclass__(**kwargs)
        cls.added = tuple(dict.fromkeys(key for klass in reversed(cls.__mro__)
                                        for key in klass.__dict__.get("added", ())))

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        scheduled = set(SCHEDULE) & set(self.parameters())  # `none` has no schedule
        if scheduled:
            self.need(self.begin >= 0, "begin >= 0")
            self.need(self.end is None or self.end > self.begin, "end > begin (end is exclusive)")
            self.need(self.every >= 1, "every >= 1")

    @classmethod
    def parameters(cls) -> dict[str, object]:
        """The attack's own parameters, then its schedule's."""
        found = super().parameters()
        return {**{k: v for k, v in found.items() if k not in SCHEDULE},
                **{k: found[k] for k in SCHEDULE if k in found}}

    def attacks_at(self, step: int) -> bool:
        """Whether the schedule attacks at ``step`` (counted from 0)."""
        return (self.begin <= step and (self.end is None or step < self.end)
                and (step - self.begin) % self.every == 0)

    def last_attacked(self, steps: int) -> int | None:
        """The last step before ``steps`` at which the schedule attacks (None: it never does)."""
        stop = steps if self.end is None else min(steps, self.end)
        if self.begin >= stop:
            return None
        return self.begin + (stop - 1 - self.begin) // self.every * self.every

    def send(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        """What the ``f`` Byzantine workers send at step ``ctx.step``: `byzantine` where the schedule attacks,
        their honest vectors on their own batches (``ctx.own()``) elsewhere."""
        if self.attacks_at(ctx.step):
            return self.byzantine(honest, f, ctx)
        if f == 0:
            return honest.new_empty((0, honest.shape[1]))
        return ctx.own()

    def byzantine(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        """The ``[f, d]`` Byzantine vectors of one step."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """State to checkpoint so that a resumed run continues exactly."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""
        if state:
            raise UserException(f"Attack {self.name!r} keeps no state, got keys {sorted(state)}.")

    def __repr__(self) -> str:
        return f"attacks.get({self.spec!r})"


class GradientAttack(Attack):
    """An attack that forges the Byzantine vectors from the honest ones.

    Subclasses implement ``forge``, which may return one ``[d]`` vector (sent by
    every Byzantine worker) or all ``[f, d]`` vectors; it is only called with
    ``f >= 1`` (and with ``h >= 1`` when ``needs_honest``).
    """

    needs_honest: ClassVar[bool] = True

    def byzantine(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        return self(honest, f, ctx)

    def __call__(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        """Return the ``[f, d]`` Byzantine vectors, never an alias of ``honest``."""
        if honest.dim() != 2:
            raise ValueError(f"Attack {self.name!r} expects honest vectors [h, d], got shape {tuple(honest.shape)}.")
        if f < 0:
            raise ValueError(f"Attack {self.name!r} cannot forge a negative number of vectors ({f}).")
        d = honest.shape[1]
        if f == 0:
            return honest.new_empty((0, d))
        if self.needs_honest and honest.shape[0] == 0:
            raise UserException(f"Attack {self.name!r} needs at least one honest worker to imitate.")
        out = self.forge(honest, f, ctx)
        if out.dim() == 1:
            out = out.unsqueeze(0).expand(f, d).clone(memory_format=torch.contiguous_format)
        return out

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        raise NotImplementedError


class DataAttack(Attack):
    """An attack that poisons the Byzantine workers' batches; their gradients are then computed honestly.

    ``momentum=false`` sends the raw gradients of the poisoned batches, without the
    worker momentum honest workers apply (ByzFL's and the bucketing paper's label flipping).
    """

    momentum: bool = True

    def byzantine(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        if f == 0:
            return honest.new_empty((0, honest.shape[1]))
        return ctx.vectors(self.poison, self.momentum)

    def poison(self, inputs: torch.Tensor, targets: torch.Tensor,
               num_classes: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(inputs, targets)`` to train on; works on stacked ``[k, b, ...]`` batches."""
        raise NotImplementedError
