"""Random horizontal flips of a run's samples, from the run's own seeded streams (``dataset(flip=true)``).

A training sample is mirrored with probability 1/2 each time a worker draws
it, a test image each time the model is evaluated. The masks come from
generators of their own (`simulator.core.seeding`), checkpointed with the
state they belong to, so a run with flips stays deterministic and resumes
exactly; without flips nothing here is built and nothing extra is drawn.

A step's training mask is drawn for all the workers of the sampler's kind at
once, [all workers, b], and each sampler keeps its rows: a slice of the workers
(a torchrun rank) or a round's selection flips what one process of all of
them flips.
"""
from __future__ import annotations

import torch

from experiments.datasets import flip_mask, hflip
from simulator.core.sampler import WorkerSampler

__all__ = ["FlippingSampler"]


class FlippingSampler(WorkerSampler):
    """A `WorkerSampler` whose batches come back with each sample flipped left-right with probability 1/2.

    Args (besides `WorkerSampler`'s):
        flips: the generator of the flip masks (one stream per kind of worker).
        total: how many workers of this kind the run has (default: these); each draw is [total, b].
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, parts: list[torch.Tensor], batch_size: int,
                 seed: int, first: int = 0, *, flips: torch.Generator, total: int | None = None) -> None:
        super().__init__(inputs, targets, parts, batch_size, seed, first)
        self.flips, self.first = flips, first
        self.total = first + len(parts) if total is None else total

    def sample(self, workers: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`WorkerSampler.sample`, the inputs [n, b, C, H, W] flipped by this draw's mask."""
        inputs, targets = super().sample(workers)
        rows = torch.arange(self.nb_workers) if workers is None else workers.to("cpu", torch.int64)
        mask = flip_mask((self.total, self.batch_size), self.flips)[self.first + rows]
        return hflip(inputs, mask), targets

    def state_dict(self) -> dict:
        """`WorkerSampler.state_dict` and the flip generator's state."""
        return {**super().state_dict(), "flips": self.flips.get_state()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.flips.set_state(state["flips"])
