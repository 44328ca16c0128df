"""Per-worker mini-batches drawn by index from device-resident tensors.

No DataLoader: the training set lives on the device as two tensors, and one
call gathers every worker's batch with a single `index_select`. Each worker
owns a `torch.Generator` derived from (seed, worker index) and walks through a
fresh random permutation of its own partition, epoch after epoch, like a
shuffled DataLoader (without replacement within an epoch). A partition smaller
than the batch size wraps around into its next permutation.

The upcoming indices of all workers sit in one [n, capacity] table with a read
position per worker; a step reads b columns of it for every worker at once.
A worker's row is refilled with new permutations (drawn on the CPU, so the
same seed gives the same batches on every device) only when fewer than b
indices are left, with as many whole epochs as the row holds: a row holds at
least `ROW` indices, so the Python loop of a refill runs about once per `ROW`
samples of a worker however small its partition (digits' 72), not every other
step. The indices drawn are the same whichever way the table is filled.
"""
from __future__ import annotations

import torch

from experiments.tools import UserException

__all__ = ["WorkerSampler", "worker_seed"]

_MASK64 = (1 << 64) - 1
_STATE = ("table", "filled", "position", "epochs")  # the tensors of a sampler's state besides its generators
ROW = 1024  # the fewest indices a worker's row of the table holds


def worker_seed(seed: int, index: int) -> int:
    """A well-mixed 63-bit seed for worker `index` of a run seeded with `seed` (SplitMix64 finaliser)."""
    z = (seed * 0x9E3779B97F4A7C15 + (index + 1) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


class WorkerSampler:
    """Draws one mini-batch per worker from device-resident tensors by index; no DataLoader.

    Args:
        inputs: the training inputs [N, *shape], already on the target device.
        targets: the training labels [N], on the same device.
        parts: one int64 index tensor per worker (see `simulator.core.heterogeneity`), each non-empty.
        batch_size: samples per worker and step.
        seed: the run's seed; worker i's generator is seeded with `worker_seed(seed, first + i)`.
        first: the index of the first of these workers among all (a slice of the workers
            draws exactly the batches those workers draw in a sampler of all of them).
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, parts: list[torch.Tensor],
                 batch_size: int, seed: int, first: int = 0) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise UserException(f"The batch size must be a positive integer, got {batch_size!r}.")
        if len(parts) == 0 or any(len(p) == 0 for p in parts):
            raise UserException("Every worker needs a non-empty partition of the training set to sample from.")
        if inputs.shape[0] != targets.shape[0]:
            raise UserException("The training inputs and labels have different numbers of samples.")
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size
        self.parts = [p.detach().to("cpu", torch.int64) for p in parts]
        self.generators = [torch.Generator().manual_seed(worker_seed(seed, first + i)) for i in range(len(parts))]
        self.sizes = torch.tensor([len(p) for p in self.parts])
        capacity = max(int(self.sizes.max()) + batch_size, ROW)
        self.table = torch.zeros(len(parts), capacity, dtype=torch.int64, device=inputs.device)
        self.filled = torch.zeros(len(parts), dtype=torch.int64)    # valid entries per row
        self.position = torch.zeros(len(parts), dtype=torch.int64)  # next entry to read per row
        self.epochs = torch.zeros(len(parts), dtype=torch.int64)    # permutations drawn per worker
        self._columns = torch.arange(batch_size, device=inputs.device)

    @property
    def nb_workers(self) -> int:
        return len(self.parts)

    def sample(self, workers: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Next batch of every worker (or of ``workers``, a 1-D index tensor; the others do not move).

        Returns inputs [n, b, *shape] and labels [n, b], rows in the order of ``workers``.
        """
        rows = torch.arange(self.nb_workers) if workers is None else workers.to("cpu", torch.int64)
        self._refill(rows[self.filled[rows] - self.position[rows] < self.batch_size].tolist())
        where = self.position[rows].to(self.table.device)[:, None] + self._columns
        indices = self.table[rows.to(self.table.device)[:, None], where].flatten()
        self.position[rows] += self.batch_size
        n, b = len(rows), self.batch_size
        return (self.inputs.index_select(0, indices).view(n, b, *self.inputs.shape[1:]),
                self.targets.index_select(0, indices).view(n, b))

    def _refill(self, workers: list[int]) -> None:
        """Move the unread indices of these workers to the front and append as many new epochs as fit."""
        capacity = self.table.shape[1]
        for i in workers:  # at most once per epoch of each worker, not per step
            row = self.table[i]
            left = row[int(self.position[i]):int(self.filled[i])].cpu()
            epochs = [left]
            total = left.numel()
            while total < self.batch_size or total + len(self.parts[i]) <= capacity:
                epochs.append(self.parts[i][torch.randperm(len(self.parts[i]), generator=self.generators[i])])
                total += len(self.parts[i])
            self.epochs[i] += len(epochs) - 1
            row[:total] = torch.cat(epochs).to(row.device)
            self.position[i], self.filled[i] = 0, total

    def state_dict(self) -> dict:
        """Generator states, the table of upcoming indices and the read positions (all on the CPU)."""
        return {"generators": [g.get_state() for g in self.generators],
                **{name: getattr(self, name).cpu().clone() for name in _STATE}}

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()` so that the next batches are exactly those of the saved run."""
        table = state["table"]
        if len(state["generators"]) != self.nb_workers or table.shape[0] != self.table.shape[0] \
                or not int(self.sizes.max()) + self.batch_size <= table.shape[1] <= self.table.shape[1]:
            raise UserException("The saved sampler state belongs to a different partition or batch size.")
        for g, s in zip(self.generators, state["generators"]):
            g.set_state(s)
        self.table.zero_()
        self.table[:, :table.shape[1]] = table.to(self.table.device)  # a checkpoint's table may be narrower (ROW)
        for name in _STATE[1:]:
            getattr(self, name).copy_(state[name])
