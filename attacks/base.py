"""What every attack is: the context it receives, the base classes, the registry.

A *gradient* attack receives the honest vectors ``[h, d]`` as the server sees
them and returns the ``f`` Byzantine vectors ``[f, d]``; a *data* attack
poisons the Byzantine workers' batches, whose gradients the simulator then
computes honestly; the ``none`` attack makes the Byzantine workers behave
honestly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from experiments.tools import UnavailableException, UserException

__all__ = ["AttackContext", "Attack", "GradientAttack", "DataAttack", "register", "registry"]

_REGISTRY: dict[str, type["Attack"]] = {}


@dataclass
class AttackContext:
    """What the simulator tells an attack besides the honest vectors.

    ``aggregator`` is the configured aggregator chain (pre-aggregation
    included), called ``aggregator(gradients[n, d], f) -> [d]``; adaptive
    attacks use its side-effect-free ``trial`` with the same signature.
    """

    nb_workers: int            # n, total number of workers (honest + Byzantine)
    decl_f: int                # f the aggregator is told (declared)
    aggregator: object | None  # the configured aggregator chain, or None
    generator: torch.Generator | None
    own_gradients: torch.Tensor | None = None  # [f, d] the Byzantine workers' own honest gradients
    num_classes: int | None = None


class Attack:
    """Base of every attack: its kind, its state (none by default) and its name."""

    name: str = ""
    kind: str = "gradient"
    needs_own_gradients: bool = False

    def __init__(self) -> None:
        """Parameterless by default; subclasses take their parameters as keywords."""

    def params(self) -> dict[str, object]:
        """The attack's parameters, as shown by ``str()``."""
        return {}

    def state_dict(self) -> dict:
        """State to checkpoint so that a resumed run continues exactly."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""
        if state:
            raise ValueError(f"Attack {self.name!r} keeps no state, got keys {sorted(state)}.")

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.params().items())
        return f"{self.name}({shown})" if shown else self.name

    __repr__ = __str__


class GradientAttack(Attack):
    """An attack that forges the Byzantine vectors from the honest ones.

    Subclasses implement ``forge``, which may return one ``[d]`` vector (sent by
    every Byzantine worker) or all ``[f, d]`` vectors; it is only called with
    ``f >= 1`` (and with ``h >= 1`` when ``needs_honest``).
    """

    kind = "gradient"
    needs_honest = True

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
    """An attack that poisons the Byzantine workers' batches instead."""

    kind = "data"

    def poison(self, inputs: torch.Tensor, targets: torch.Tensor,
               num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return new ``(inputs, targets)``; works on stacked ``[k, b, ...]`` batches."""
        raise NotImplementedError


def register(name: str):
    """Class decorator: make the attack available as ``attacks.get(name)``."""
    def decorate(cls: type[Attack]) -> type[Attack]:
        if name in _REGISTRY:
            raise ValueError(f"Attack {name!r} is registered twice.")
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return decorate


def registry() -> dict[str, type[Attack]]:
    """A copy of the name -> class table."""
    return dict(_REGISTRY)


def lookup(name: str) -> type[Attack]:
    """The class registered under ``name``, or ``UnavailableException``."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnavailableException("attack", name, _REGISTRY) from None
