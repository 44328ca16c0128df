"""Who computes the workers' gradients each step: this process, or other ranks.

The simulation asks its workers for two things: the honest workers' gradients
of this step (each on a batch from its own partition), and, when an attack
asks for them, the Byzantine workers' gradients on their own iid batches,
poisoned first by a data attack. `LocalWorkers` does both in this process
with one gradient engine; `simulator.engines.distributed.RemoteWorkers` has
other torch.distributed ranks do them. Both hand back raw gradients: the l2
term, clipping and worker momentum are the simulation's.
"""
from __future__ import annotations

import torch

from attacks.base import Poison
from simulator.engines import Engine
from simulator.sampler import WorkerSampler

__all__ = ["LocalWorkers"]


class LocalWorkers:
    """The workers in this process: a gradient engine over the honest and the Byzantine samplers."""

    def __init__(self, engine: Engine, honest: WorkerSampler | None, byzantine: WorkerSampler | None,
                 num_classes: int | None = None) -> None:
        self.engine, self.sampler, self.byzantine_sampler, self.num_classes = engine, honest, byzantine, num_classes

    @property
    def name(self) -> str:
        return self.engine.name

    def honest(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The honest workers' gradients [h, d] and losses [h] of this step (their batch-norm buffers kept)."""
        inputs, targets = self.sampler.sample()
        return self.engine.gradients(inputs, targets)

    def byzantine(self, poison: Poison | None) -> torch.Tensor:
        """The Byzantine workers' gradients [f, d] on their next batches, poisoned first (their buffers not kept)."""
        inputs, targets = self.byzantine_sampler.sample()
        if poison is not None:
            inputs, targets = poison(inputs, targets, self.num_classes)
        return self.engine.gradients(inputs, targets, update_buffers=False)[0]

    def state_dict(self) -> dict:
        return {"engine_name": self.engine.name, "engine": self.engine.state_dict(),
                "sampler": self.sampler.state_dict() if self.sampler else None,
                "byzantine_sampler": self.byzantine_sampler.state_dict() if self.byzantine_sampler else None}

    def load_state_dict(self, state: dict) -> None:
        self.engine.load_state_dict(state["engine"])
        if self.sampler:
            self.sampler.load_state_dict(state["sampler"])
        if self.byzantine_sampler:
            self.byzantine_sampler.load_state_dict(state["byzantine_sampler"])
