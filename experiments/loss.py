"""Derivable losses (composable) and non-derivable criteria.

A `Loss` is called as ``loss(output, target, params)`` and returns a scalar;
``params`` is the model's flat parameter vector, used by the ``l1``/``l2``
regularisers. Losses compose with ``+`` and scalar ``*``: internally a loss is a
list of (factor, name, function) terms, so a factor is applied exactly once.
A `Criterion` is called as ``criterion(output, target)`` and returns
``[num_correct, batch_size]``.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.modules.loss as losses

from experiments.tools import UnavailableException, UserException

__all__ = ["Loss", "Criterion", "LOSSES", "loss_names", "criterion_names"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

_REGULARISERS: dict[str, LossFn] = {
    "l1": lambda output, target, params: params.abs().sum(),
    "l2": lambda output, target, params: params.pow(2).sum(),
}


@functools.cache
def _torch_losses() -> dict[str, type]:
    """torch.nn losses by lower-case class name without the "Loss" suffix (``l1loss`` for L1Loss).

    The full lower-case class names (``crossentropyloss``) are accepted too.
    """
    table: dict[str, type] = {}
    for cls_name in losses.__all__:
        if not cls_name.endswith("Loss"):  # deprecated aliases such as NLLLoss2d
            continue
        short = cls_name.lower().removesuffix("loss")
        table[cls_name.lower() if short in _REGULARISERS else short] = getattr(losses, cls_name)
    return table


def loss_names() -> list[str]:
    """Every accepted canonical loss name."""
    return sorted([*_torch_losses(), *_REGULARISERS])


def _resolve_loss(name: str, args: tuple, kwargs: dict) -> LossFn:
    if name in _REGULARISERS:
        if args or kwargs:
            raise UserException(f"Loss {name!r} takes no arguments.")
        return _REGULARISERS[name]
    table = _torch_losses()
    cls = table.get(name) or {c.__name__.lower(): c for c in table.values()}.get(name)
    if cls is None:
        raise UnavailableException("loss", name, loss_names())
    module = cls(*args, **kwargs)
    return lambda output, target, params: module(output, target)


class Loss:
    """Derivable loss: a torch loss by lower-case name, ``l1``/``l2`` regularisation, or a callable.

    Args:
        name_build: loss name (``"crossentropy"``, ``"nll"``, ``"mse"``, ``"l1loss"``,
            ``"l1"``, ``"l2"``...) or a callable ``(output, target, params) -> scalar``.
        *args, **kwargs: forwarded to the torch loss constructor.
    """

    def __init__(self, name_build: str | LossFn, *args: Any, **kwargs: Any):
        if isinstance(name_build, str):
            terms = [(1.0, name_build, _resolve_loss(name_build, args, kwargs), name_build in _REGULARISERS)]
        elif callable(name_build):
            terms = [(1.0, getattr(name_build, "__name__", "custom"), name_build, True)]
        else:
            raise UserException(f"A loss is a name or a callable, not a {type(name_build).__name__}.")
        self._terms: list[tuple[float, str, LossFn, bool]] = terms

    @classmethod
    def _of(cls, terms: list[tuple[float, str, LossFn, bool]]) -> Loss:
        loss = cls.__new__(cls)
        loss._terms = terms
        return loss

    @property
    def needs_params(self) -> bool:
        """Whether some term may read the parameters (regularisers, callables)."""
        return any(uses for *_, uses in self._terms)

    def __call__(self, output: torch.Tensor, target: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        total = None
        for factor, _, fn, _ in self._terms:
            value = fn(output, target, params)
            value = value if factor == 1.0 else factor * value
            total = value if total is None else total + value
        return total

    def __add__(self, other: Loss) -> Loss:
        if not isinstance(other, Loss):
            return NotImplemented
        return Loss._of(self._terms + other._terms)

    def __radd__(self, other: Any) -> Loss:
        if isinstance(other, (int, float)) and other == 0:  # sum([loss, ...])
            return self
        return NotImplemented

    def __mul__(self, factor: float) -> Loss:
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            return NotImplemented
        return Loss._of([(factor * f, name, fn, uses) for f, name, fn, uses in self._terms])

    __rmul__ = __mul__

    def __truediv__(self, divisor: float) -> Loss:
        if isinstance(divisor, bool) or not isinstance(divisor, (int, float)):
            return NotImplemented
        return self * (1.0 / divisor)

    def __str__(self) -> str:
        return " + ".join(name if factor == 1.0 else f"{factor:g} * {name}" for factor, name, *_ in self._terms)

    def __repr__(self) -> str:
        return f"Loss({str(self)!r})"


# The losses a simulated run trains with, as functions ``loss(output, target, reduction="mean")``.
LOSSES: dict[str, Callable[..., torch.Tensor]] = {"crossentropy": torch.nn.functional.cross_entropy,
                                                  "nll": torch.nn.functional.nll_loss}


def _top_k(k: int = 1) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if not isinstance(k, int) or k < 1:
        raise UserException(f"Criterion 'top-k' needs an integer k >= 1, got {k!r}.")

    def top_k(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        best = output.topk(min(k, output.shape[1]), dim=1).indices
        correct = (best == target.view(-1, 1)).any(dim=1).sum()
        return torch.stack([correct.to(output.dtype), torch.tensor(len(target), dtype=output.dtype, device=output.device)])
    return top_k


def _sigmoid() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def sigmoid(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        predicted = output.reshape(target.shape) >= 0  # sigmoid(output) >= 0.5
        correct = (predicted == (target > 0.5)).sum()
        return torch.stack([correct.to(output.dtype), torch.tensor(len(target), dtype=output.dtype, device=output.device)])
    return sigmoid


_CRITERIA: dict[str, Callable[..., Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]] = {"top-k": _top_k,
                                                                                          "sigmoid": _sigmoid}


def criterion_names() -> list[str]:
    """Every accepted criterion name."""
    return sorted(_CRITERIA)


class Criterion:
    """Non-derivable metric returning ``[num_correct, batch_size]``.

    ``"top-k"`` (argument ``k``, default 1): the target is among the k largest
    outputs. ``"sigmoid"``: binary prediction ``sigmoid(output) >= 0.5`` equals
    the 0/1 target. A callable ``(output, target) -> [correct, size]`` is also accepted.
    """

    def __init__(self, name_build: str | Callable, *args: Any, **kwargs: Any):
        if isinstance(name_build, str):
            if name_build not in _CRITERIA:
                raise UnavailableException("criterion", name_build, _CRITERIA)
            try:
                self._fn = _CRITERIA[name_build](*args, **kwargs)
            except TypeError as err:
                raise UserException(f"Invalid arguments for criterion {name_build!r}: {err}") from None
            self._name = name_build
        elif callable(name_build):
            self._fn, self._name = name_build, getattr(name_build, "__name__", "custom")
        else:
            raise UserException(f"A criterion is a name or a callable, not a {type(name_build).__name__}.")

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._fn(output, target)

    def __str__(self) -> str:
        return self._name
