"""Gradient engines: all workers' gradients of one shared model, per step.

- ``vmap``: one batched pass with `torch.func` (`simulator.core.engines.vmap`).
- ``loop``: one autograd pass per worker, the reference (`simulator.core.engines.loop`).
- ``grouped``: one grouped-convolution / batched-matmul pass for all workers,
  for sequences of Conv2d, Linear, ReLU, pooling and dropout layers
  (`simulator.core.engines.grouped`).
- ``auto``: ``vmap`` if the model passes a probe batch, otherwise ``loop``; the
  reason for falling back is logged on the ``byzsim`` logger.
- ``distributed``: the honest workers on other torch.distributed ranks
  (`simulator.core.distributed`), each rank running ``auto`` on its slice.

Both engines give the same gradients to float tolerance for models without
dropout; with dropout each is reproducible from its seed but their masks differ.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from experiments.registry import Registry
from simulator.core.engines.base import Engine, LossFn
from simulator.core.engines.grouped import GroupedEngine
from simulator.core.engines.loop import LoopEngine
from simulator.core.engines.vmap import VmapEngine

__all__ = ["Engine", "ENGINES", "make_engine", "names", "describe", "VmapEngine", "LoopEngine", "GroupedEngine"]

logger = logging.getLogger("byzsim")

Probe = tuple[torch.Tensor, torch.Tensor]
Builder = Callable[..., Engine]  # (model, loss_fn, *, chunk_size, seed, probe) -> Engine

ENGINES: Registry[Builder] = Registry("engine")


def _plain(cls: type[Engine]) -> Builder:
    def build(model, loss_fn: LossFn, *, chunk_size: int | None, seed: int, probe: Probe | None) -> Engine:
        return cls(model, loss_fn, chunk_size=chunk_size, seed=seed)
    return build


def _auto(model, loss_fn: LossFn, *, chunk_size: int | None, seed: int, probe: Probe | None) -> Engine:
    """The vmap engine if a throwaway one computes the probe batch's gradients, else the loop engine."""
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


ENGINES.add("vmap", _plain(VmapEngine), "all workers in one batched torch.func pass (functional_call + grad + vmap)")
ENGINES.add("loop", _plain(LoopEngine), "one autograd pass per worker: the reference, and the fallback for any model")
ENGINES.add("grouped", _plain(GroupedEngine), "one grouped-convolution / batched-matmul forward and backward for "
                                             "all workers (Conv2d, Linear, ReLU, pooling, dropout models)")
ENGINES.add("auto", _auto, "vmap if the model passes a probe batch, else loop (the reason is logged)")


def _distributed(model, loss_fn: LossFn, *, chunk_size: int | None, seed: int, probe: Probe | None) -> Engine:
    raise ValueError("the distributed engine is not built by make_engine: simulator.core.run starts it under torchrun "
                     "(see simulator.core.distributed)")


ENGINES.add("distributed", _distributed, "the honest workers on torch.distributed ranks, rank 0 the server "
                                         "(launch with torchrun)")


def names() -> list[str]:
    """Every engine name, sorted."""
    return ENGINES.names()


def describe(name: str) -> str:
    """One line describing an engine."""
    return ENGINES.describe(name)


def make_engine(name: str, model, loss_fn: LossFn, *, chunk_size: int | None = None, seed: int = 0,
                probe: Probe | None = None) -> Engine:
    """Build the engine `name` for `model` (an `experiments.Model` or a plain module).

    Args:
        name: ``vmap``, ``loop`` or ``auto``.
        model: the shared model.
        loss_fn: the data loss ``loss_fn(output, target)``, a mean over the batch.
        chunk_size: vmap only: at most this many workers per batched pass (bounds memory).
        seed: seeds the engine's own generator (dropout masks).
        probe: auto only: one example batch (inputs [b, *shape], labels [b]) to try vmap on.
    """
    return ENGINES.get(name)(model, loss_fn, chunk_size=chunk_size, seed=seed, probe=probe)
