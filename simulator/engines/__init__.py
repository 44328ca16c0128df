"""Gradient engines: all workers' gradients of one shared model, per step.

- ``vmap``: one batched pass with `torch.func` (`simulator.engines.vmap`).
- ``loop``: one `Model.backprop` per worker, the reference (`simulator.engines.loop`).
- ``auto``: ``vmap`` if the model passes a small probe, otherwise ``loop``; the
  reason for falling back is logged on the ``byzsim`` logger.

Both engines give the same gradients to float tolerance for models without
dropout; with dropout each is reproducible from its seed but their masks differ.
"""
from __future__ import annotations

import logging

import torch

from experiments.tools import UnavailableException
from simulator.engines.base import Engine, LossFn
from simulator.engines.loop import LoopEngine
from simulator.engines.vmap import VmapEngine

__all__ = ["Engine", "make_engine", "names", "describe", "VmapEngine", "LoopEngine"]

logger = logging.getLogger("byzsim")

_ENGINES: dict[str, tuple[type[Engine] | None, str]] = {
    "vmap": (VmapEngine, "all workers in one batched torch.func pass (functional_call + grad + vmap)"),
    "loop": (LoopEngine, "one Model.backprop per worker: the reference, and the fallback for any model"),
    "auto": (None, "vmap if the model passes a small probe, else loop (the reason is logged)"),
}


def names() -> list[str]:
    """Every engine name, sorted."""
    return sorted(_ENGINES)


def describe(name: str) -> str:
    """One line describing an engine."""
    if name not in _ENGINES:
        raise UnavailableException("engine", name, names())
    return _ENGINES[name][1]


def make_engine(name: str, model, loss_fn: LossFn, *, chunk_size: int | None = None, seed: int = 0,
                probe: tuple[torch.Tensor, torch.Tensor] | None = None) -> Engine:
    """Build the engine `name` for `model` (an `experiments.Model`, or a plain module for vmap).

    Args:
        name: ``vmap``, ``loop`` or ``auto``.
        model: the shared model.
        loss_fn: the data loss ``loss_fn(output, target)``, a mean over the batch.
        chunk_size: vmap only: at most this many workers per batched pass (bounds memory).
        seed: seeds the engine's own generator (dropout masks).
        probe: auto only: one example batch (inputs [b, *shape], labels [b]) to try vmap on now;
            without it, auto probes on the first call's data.
    """
    if name not in _ENGINES:
        raise UnavailableException("engine", name, names())
    engine_class = _ENGINES[name][0]
    if engine_class is not None:
        return engine_class(model, loss_fn, chunk_size=chunk_size, seed=seed)
    engine = AutoEngine(model, loss_fn, chunk_size=chunk_size, seed=seed)
    if probe is not None:
        engine.resolve(probe[0].unsqueeze(0), probe[1].unsqueeze(0))
    return engine


class AutoEngine(Engine):
    """Delegates to the vmap engine if it runs on a probe batch, else to the loop engine.

    `name` is ``"auto"`` until resolved, then the engine actually used.
    """

    name = "auto"

    def __init__(self, model, loss_fn: LossFn, *, chunk_size: int | None = None, seed: int = 0) -> None:
        super().__init__(model, loss_fn, chunk_size=chunk_size, seed=seed)
        self._seed = seed
        self.chosen: Engine | None = None

    def resolve(self, inputs: torch.Tensor, targets: torch.Tensor) -> Engine:
        """Try vmap on two samples of one worker (buffers and RNGs untouched); fall back to loop."""
        if self.chosen is not None:
            return self.chosen
        try:
            engine = VmapEngine(self.model, self.loss_fn, chunk_size=self.chunk_size, seed=self._seed)
            was_training = self.module.training
            self.module.train()
            try:
                engine._compute(inputs[:1, :2], targets[:1, :2], update_buffers=False, seed=0)
            finally:
                self.module.train(was_training)
        except Exception as error:  # any failure of torch.func on this model means: use the loop
            logger.warning("engine 'auto' falls back to 'loop': vmap failed on this model (%s: %s)",
                           type(error).__name__, error)
            engine = LoopEngine(self.model, self.loss_fn, chunk_size=self.chunk_size, seed=self._seed)
        else:
            logger.info("engine 'auto' uses 'vmap'")
        engine.load_state_dict(Engine.state_dict(self))
        self.chosen, self.name = engine, engine.name
        return engine

    def gradients(self, inputs: torch.Tensor, targets: torch.Tensor, *,
                  update_buffers: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        return self.resolve(inputs, targets).gradients(inputs, targets, update_buffers=update_buffers)

    def state_dict(self) -> dict:
        return (self.chosen or super()).state_dict()

    def load_state_dict(self, state: dict) -> None:
        (self.chosen or super()).load_state_dict(state)
