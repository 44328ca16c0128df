"""Gradient engines: all workers' gradients of one shared model, per step.

An engine is chosen by a spec (``vmap(chunk_size=8)``), a registered `EngineChoice`
that builds the `Engine` of a run:

- ``vmap``: one batched pass with `torch.func` (`simulator.core.engines.vmap`).
- ``loop``: one autograd pass per worker, the reference (`simulator.core.engines.loop`).
- ``grouped``: one grouped-convolution / batched-matmul pass for all workers,
  for sequences of Conv2d, Linear, ReLU, pooling and dropout layers
  (`simulator.core.engines.grouped`).
- ``auto``: ``vmap`` if the model passes a probe batch, otherwise ``loop``; the
  reason for falling back is logged on the ``byzsim`` logger.

The batched engines take ``chunk_size`` (workers per pass) or ``memory_budget``
(GiB for the pass, which sets the chunk size; by default 80% of a GPU's free
memory, no limit on a CPU). The engines give the same gradients to float
tolerance for models without dropout; with dropout each is reproducible from its
seed but their masks differ. A new engine is one module in this package: an
`Engine` subclass (its `_compute`) and an `EngineChoice` naming it, decorated
with ``@register("name")``.
"""
from __future__ import annotations

import logging
from typing import ClassVar

import torch

from experiments.plugin import Plugin
from experiments.registry import Registry
from simulator.core.engines.base import Engine, LossFn
from simulator.core.engines.grouped import GroupedEngine
from simulator.core.engines.loop import LoopEngine
from simulator.core.engines.vmap import VmapEngine

__all__ = ["Engine", "EngineChoice", "ENGINES", "register", "make_engine", "VmapEngine", "LoopEngine", "GroupedEngine"]

logger = logging.getLogger("byzsim")

Probe = tuple[torch.Tensor, torch.Tensor]


class EngineChoice(Plugin):
    """How a run computes its workers' gradients: ``make(...)`` builds the engine."""

    family = "engine"
    engine: ClassVar[type[Engine]] = LoopEngine

    def make(self, model, loss_fn: LossFn, *, chunk_size: int | None, seed: int, probe: Probe | None) -> Engine:
        return self.engine(model, loss_fn, chunk_size=chunk_size, seed=seed)


class _Batched(EngineChoice):
    chunk_size: int | None = None
    memory_budget: float | None = None  # GiB

    def validate(self) -> None:
        self.need(self.chunk_size is None or self.chunk_size >= 1, "chunk_size >= 1")
        self.need(self.memory_budget is None or self.memory_budget > 0, "memory_budget > 0")


ENGINES: Registry[type[EngineChoice]] = Registry("engine", packages=("simulator.core.engines",))
register = ENGINES.register


@register("loop")
class Loop(EngineChoice):
    """one autograd pass per worker: the reference, and the fallback for any model"""


@register("vmap")
class Vmap(_Batched):
    """all workers in one batched torch.func pass (functional_call + grad + vmap)"""

    engine = VmapEngine


@register("grouped")
class Grouped(_Batched):
    """one grouped-convolution / batched-matmul pass for all workers (Conv2d, Linear, ReLU, pooling, dropout)"""

    engine = GroupedEngine


@register("auto")
class Auto(_Batched):
    """vmap if the model passes a probe batch, else loop (the reason is logged)"""

    def make(self, model, loss_fn: LossFn, *, chunk_size: int | None, seed: int, probe: Probe | None) -> Engine:
        if probe is None:
            raise ValueError("engine 'auto' needs a probe batch (inputs [b, *shape], labels [b]) to choose an engine")
        try:
            trial = VmapEngine(model, loss_fn, chunk_size=chunk_size, seed=seed)
            trial.gradients(probe[0][None, :2], probe[1][None, :2], update_buffers=False)
        except Exception as error:  # any failure of torch.func on this model means: use the loop
            logger.warning("engine 'auto' falls back to 'loop': vmap failed on this model (%s: %s)",
                           type(error).__name__, error)
            return LoopEngine(model, loss_fn, chunk_size=chunk_size, seed=seed)
        logger.info("engine 'auto' uses 'vmap'")
        return VmapEngine(model, loss_fn, chunk_size=chunk_size, seed=seed)


def make_engine(spec: str, model, loss_fn: LossFn, *, chunk_size: int | None = None, seed: int = 0,
                probe: Probe | None = None) -> Engine:
    """Build the engine a spec names for `model` (an `experiments.Model` or a plain module).

    Args:
        spec: ``vmap``, ``grouped``, ``loop`` or ``auto``, with parameters.
        model: the shared model.
        loss_fn: the data loss ``loss_fn(output, target)``, a mean over the batch.
        chunk_size: the batched engines: at most this many workers per pass (bounds memory).
        seed: seeds the engine's own generator (dropout masks).
        probe: auto only: one example batch (inputs [b, *shape], labels [b]) to try vmap on.
    """
    return ENGINES.build(spec).make(model, loss_fn, chunk_size=chunk_size, seed=seed, probe=probe)
