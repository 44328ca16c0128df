"""Gradient engines: all workers' gradients of one shared model, per step.

An engine is chosen by a spec (``vmap(chunk_size=8)``), a registered `EngineChoice`
that builds the `Engine` of a run:

- ``vmap``: one batched pass with `torch.func` (`simulator.core.engines.vmap`).
- ``loop``: one autograd pass per worker, the reference (`simulator.core.engines.loop`).
- ``grouped``: one grouped-convolution / batched-matmul pass for all workers,
  for sequences of Conv2d, Linear, ReLU, pooling and dropout layers
  (`simulator.core.engines.grouped`).
- ``fastest`` (the default): the first engine of `FASTEST` for the model's
  device that can take the model, judged from its layers (grouped) or a probe
  batch (vmap), never from a timing, so the same config always gets the same
  engine; the choice and the reason for passing over an engine are logged on
  the ``byzsim`` logger.
- ``auto`` (the default until ``fastest``): ``vmap`` if the model passes a
  probe batch, otherwise ``loop``. It keeps its meaning so that every run made
  with it keeps its run id and its numbers.

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
from simulator.core.engines.base import Engine, LossFn, module_of
from simulator.core.engines.grouped import GroupedEngine
from simulator.core.engines.loop import LoopEngine
from simulator.core.engines.vmap import VmapEngine

__all__ = ["Engine", "EngineChoice", "ENGINES", "FASTEST", "register", "make_engine", "VmapEngine", "LoopEngine",
           "GroupedEngine"]

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


# The engines `fastest` tries on each device type, best first (other devices: `ELSEWHERE`). On a CPU the grouped
# engine is the fastest wherever it applies (benchmarks/step.py, docs/engines.md); on CUDA the order is the one
# `auto` has always had, not yet measured against the grouped engine. A run id hashes the name `fastest`, not
# this table: a new order is a new choice under a new name, so that no run id comes to mean another engine.
# The grouped engine took batch norm on 6 December 2026: `fastest` runs of a model with BatchNorm2d made before
# then ran on vmap (summary.json names the engine a run used; its checkpoint does not resume under another one).
FASTEST: dict[str, tuple[str, ...]] = {"cpu": ("grouped", "vmap", "loop"), "cuda": ("vmap", "grouped", "loop")}
ELSEWHERE = ("vmap", "loop")


class _FirstThatFits(_Batched):
    """The first engine of `order(device)` that can take the model: grouped by its layers (and its forward
    pass on the probe batch, where one is given), vmap by a probe batch, loop always. Each engine passed
    over is logged with the reason."""

    def order(self, device: torch.device) -> tuple[str, ...]:
        raise NotImplementedError

    def make(self, model, loss_fn: LossFn, *, chunk_size: int | None, seed: int, probe: Probe | None) -> Engine:
        module = module_of(model)
        device = next(module.parameters()).device
        passed: list[str] = []
        for name in self.order(device):
            reason = _reason_against(name, model, loss_fn, chunk_size, seed, probe, self.name)
            if reason is None:
                why = f" ({'; '.join(passed)})" if passed else ""
                if name == "loop" and passed:  # the slow reference: say so where it shows
                    logger.warning("engine '%s' falls back to 'loop' on %s%s", self.name, device.type, why)
                else:
                    logger.info("engine '%s' uses '%s' on %s%s", self.name, name, device.type, why)
                return ENGINES.get(name).engine(model, loss_fn, chunk_size=chunk_size, seed=seed)
            passed.append(f"not '{name}': {reason}")
        raise AssertionError("the loop engine takes every model")  # every order ends with loop


def _reason_against(name: str, model, loss_fn: LossFn, chunk_size: int | None, seed: int, probe: Probe | None,
                    chooser: str) -> str | None:
    """Why engine ``name`` cannot take the model, or None: structure for grouped, a probe batch for vmap."""
    if name == "grouped":  # the layers, then (with a probe batch) the grouped forward against the model's own
        reason = GroupedEngine.unsupported(module_of(model), loss_fn)
        if reason is None and not GroupedEngine.sequential(module_of(model)):
            reason = "its grouped pass would be a traced graph, no faster than vmap (resnet18, benchmarks/step.py)"
        if reason is None and probe is not None:
            reason = GroupedEngine(model, loss_fn, chunk_size=chunk_size, seed=seed).differs(probe[0][:2])
        return reason
    if name == "vmap":
        if probe is None:
            raise ValueError(f"engine '{chooser}' needs a probe batch (inputs [b, *shape], labels [b]) to try vmap")
        try:
            trial = VmapEngine(model, loss_fn, chunk_size=chunk_size, seed=seed)
            trial.gradients(probe[0][None, :2], probe[1][None, :2], update_buffers=False)
        except Exception as error:  # any failure of torch.func on this model means: not vmap
            return f"vmap failed on this model ({type(error).__name__}: {error})"
    return None


@register("fastest")
class Fastest(_FirstThatFits):
    """the default: the fastest engine that takes the model on its device, from its layers (never timed)"""

    def order(self, device: torch.device) -> tuple[str, ...]:
        return FASTEST.get(device.type, ELSEWHERE)


@register("auto")
class Auto(_FirstThatFits):
    """vmap if the model passes a probe batch, else loop (the default before 'fastest'; its runs keep their ids)"""

    def order(self, device: torch.device) -> tuple[str, ...]:
        return ("vmap", "loop")


def make_engine(spec: str, model, loss_fn: LossFn, *, chunk_size: int | None = None, seed: int = 0,
                probe: Probe | None = None) -> Engine:
    """Build the engine a spec names for `model` (an `experiments.Model` or a plain module).

    Args:
        spec: ``fastest``, ``vmap``, ``grouped``, ``loop`` or ``auto``, with parameters.
        model: the shared model.
        loss_fn: the data loss ``loss_fn(output, target)``, a mean over the batch.
        chunk_size: the batched engines: at most this many workers per pass (bounds memory).
        seed: seeds the engine's own generator (dropout masks).
        probe: ``fastest`` and ``auto``: one example batch (inputs [b, *shape], labels [b]) to try vmap on
            (needed only when they get to vmap).
    """
    return ENGINES.build(spec).make(model, loss_fn, chunk_size=chunk_size, seed=seed, probe=probe)
