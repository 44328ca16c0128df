"""Who computes the workers' gradients each step: this process, or other ranks.

The simulation asks its workers for two things: the honest workers' gradients
of this step (each on a batch from its own partition), and, when an attack
asks for them, the Byzantine workers' gradients on their own iid batches,
poisoned first by a data attack. `LocalWorkers` does both in this process
with one gradient engine; `simulator.core.distributed.RemoteWorkers` has
other torch.distributed ranks do them. Both hand back raw gradients: the l2
term, clipping and worker momentum are the simulation's. Under DP-SGD
(``private``) the honest workers' gradients are its noisy clipped means
(`simulator.core.privacy.dpsgd.PerSample`); the Byzantine workers' never are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from attacks.base import Poison
from simulator.core.engines import Engine
from simulator.core.sampler import WorkerSampler

if TYPE_CHECKING:
    from simulator.core.privacy.dpsgd import PerSample

__all__ = ["LocalWorkers", "LocalSteps"]


@dataclass(frozen=True)
class LocalSteps:
    """How a federated client trains in a round: K local SGD steps (see `Engine.local_updates`)."""

    steps: int
    lr: float
    momentum: float
    l2: float
    clip: float | None
    same_batch: bool  # every local step of a round on one batch (``local_batches = "same"``)

    def batches(self, sampler: WorkerSampler, rows: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The selected workers' batches for each local step: [m, K, b, ...] and [m, K, b]."""
        if self.same_batch:
            inputs, targets = sampler.sample(rows)
            return (inputs.unsqueeze(1).expand(-1, self.steps, *inputs.shape[1:]),
                    targets.unsqueeze(1).expand(-1, self.steps, *targets.shape[1:]))
        draws = [sampler.sample(rows) for _ in range(self.steps)]
        return torch.stack([x for x, _ in draws], dim=1), torch.stack([y for _, y in draws], dim=1)


class LocalWorkers:
    """The workers in this process: a gradient engine over the honest and the Byzantine samplers."""

    def __init__(self, engine: Engine, honest: WorkerSampler | None, byzantine: WorkerSampler | None,
                 num_classes: int | None = None, private: "PerSample | None" = None) -> None:
        self.engine, self.sampler, self.byzantine_sampler, self.num_classes = engine, honest, byzantine, num_classes
        self.private = private  # DP-SGD at the honest workers, or None

    @property
    def name(self) -> str:
        return self.engine.name

    def honest(self, rows: torch.Tensor | None = None, local: LocalSteps | None = None,
               at: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The honest workers' gradients [h, d] and losses [h] of this step (their batch-norm buffers kept).

        ``rows`` selects some of them (a client pool's round); with ``local``, each takes
        K local steps and the result is its update instead of its gradient; ``at`` [h, d]
        takes each gradient at the worker's own parameters (Nesterov's look-ahead).
        """
        if self.private is not None:
            return self._private(rows, local, at)
        if local is None:
            return self.engine.gradients(*self.sampler.sample(rows), at=at)
        return self.engine.local_updates(*local.batches(self.sampler, rows), lr=local.lr, momentum=local.momentum,
                                         l2=local.l2, clip=local.clip)

    def _private(self, rows: torch.Tensor | None, local: LocalSteps | None,
                 at: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """`honest` under DP-SGD: noisy clipped means, or local updates with DP-SGD at every local step."""
        if local is None:
            return self.private.gradients(self.engine, *self.sampler.sample(rows), at=at)
        inputs, targets = local.batches(self.sampler, rows)
        like = self.engine.params[0]
        private = self.private.steps(inputs.shape[0], local.steps, self.engine.dimension, like)
        return self.engine.local_updates(inputs, targets, lr=local.lr, momentum=local.momentum, l2=local.l2,
                                         clip=local.clip, private=private)

    def byzantine(self, poison: Poison | None, rows: torch.Tensor | None = None,
                  local: LocalSteps | None = None, at: torch.Tensor | None = None) -> torch.Tensor:
        """The Byzantine workers' gradients [f, d] (or local updates) on their next batches, poisoned first.

        Their batch-norm buffers are not kept; ``at`` as in `honest`.
        """
        sampler = self.byzantine_sampler
        inputs, targets = sampler.sample(rows) if local is None else local.batches(sampler, rows)
        if poison is not None:
            inputs, targets = poison(inputs, targets, self.num_classes)
        if local is None:
            return self.engine.gradients(inputs, targets, update_buffers=False, at=at)[0]
        return self.engine.local_updates(inputs, targets, lr=local.lr, momentum=local.momentum, l2=local.l2,
                                         clip=local.clip, update_buffers=False)[0]

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
