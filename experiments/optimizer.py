"""Optimizer wrapper: any `torch.optim` optimizer by lower-case name, with learning-rate control."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from experiments.tools import UnavailableException, UserException

__all__ = ["Optimizer", "optimizer_names"]


@functools.cache
def _optimizers() -> dict[str, type]:
    return {name.lower(): cls for name, cls in vars(torch.optim).items()
            if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer}


def optimizer_names() -> list[str]:
    """Every accepted optimizer name (``sgd``, ``adam``, ``adamw``, ``rmsprop``...)."""
    return sorted(_optimizers())


class Optimizer:
    """A `torch.optim` optimizer over a `Model`'s parameters.

    Args:
        name_build: lower-case `torch.optim` class name or a constructor
            ``(params, *args, **kwargs) -> torch.optim.Optimizer``.
        model: the `experiments.Model` whose parameters are optimized.
        *args, **kwargs: forwarded to the constructor (e.g. ``lr=0.1, momentum=0.9``).
    """

    def __init__(self, name_build: str | Callable[..., torch.optim.Optimizer], model: Any, *args: Any, **kwargs: Any):
        if isinstance(name_build, str):
            build = _optimizers().get(name_build)
            if build is None:
                raise UnavailableException("optimizer", name_build, _optimizers())
        elif callable(name_build):
            build = name_build
        else:
            raise UserException(f"An optimizer is a name or a callable, not a {type(name_build).__name__}.")
        module = model.module if hasattr(model, "module") else model
        try:
            self._optim = build(module.parameters(), *args, **kwargs)
        except (TypeError, ValueError) as err:
            raise UserException(f"Invalid arguments for optimizer {name_build!r}: {err}") from None
        self._name = name_build if isinstance(name_build, str) else getattr(build, "__name__", "custom")

    @property
    def optim(self) -> torch.optim.Optimizer:
        """The underlying `torch.optim.Optimizer`."""
        return self._optim

    def get_lr(self) -> float:
        """The learning rate of the first parameter group."""
        return self._optim.param_groups[0]["lr"]

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of every parameter group."""
        for group in self._optim.param_groups:
            group["lr"] = lr

    def step(self) -> None:
        """One optimization step using the current ``param.grad`` (the model's flat gradient)."""
        self._optim.step()

    def state_dict(self) -> dict:
        """The underlying optimizer's state dictionary."""
        return self._optim.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Load the underlying optimizer's state dictionary."""
        self._optim.load_state_dict(state)

    def __str__(self) -> str:
        return f"optimizer {self._name}"
