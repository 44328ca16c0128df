"""Momentum placements and the server's parameter update, on flat vectors.

Three placements, as in ByzantineMomentum (El Mhamdi et al., ICLR 2021):

- worker: each worker keeps m_i <- mu m_i + (1 - dampening) g_i and sends m_i
  (or g_i + mu m_i with Nesterov); the server applies lr * aggregate.
- server: the server keeps m <- mu m + (1 - dampening) G on the aggregate G
  and applies lr * m (torch.optim.SGD's rule, except that the buffer starts
  at zero, so dampening also scales the first step; identical without
  dampening).
- update: the server keeps momentum on the update itself,
  u <- mu u + (1 - dampening) lr G, and applies u; it differs from `server`
  only when the learning rate changes.

Buffers start at zero. Weight decay (weight_decay * params, added to the
aggregate by the server before its optimiser) is the simulation's, not this module's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from simulator.core.config import Config


def momentum_step(buffer: torch.Tensor, vector: torch.Tensor, mu: float, dampening: float, nesterov: bool) -> torch.Tensor:
    """Update `buffer` in place with `vector`; return the direction to use.

    Without Nesterov the direction is the buffer itself (no copy): callers read it
    within the step and never write to it.
    """
    buffer.mul_(mu).add_(vector, alpha=1.0 - dampening)
    return vector + mu * buffer if nesterov else buffer


class Momentum:
    """Momentum state of one run, for the configured placement."""

    def __init__(self, config: "Config", dim: int, device: torch.device, dtype: torch.dtype):
        self.mu, self.dampening, self.nesterov = config.momentum, config.dampening, config.nesterov
        self.placement = config.momentum_at if config.momentum > 0 else None
        rows = config.pool if self.placement == "worker" else 1  # one buffer per worker, or per client of a pool
        self.buffer = torch.zeros(rows, dim, device=device, dtype=dtype)

    def at_workers(self, gradients: torch.Tensor, rows: int | torch.Tensor) -> torch.Tensor:
        """What workers send, given their gradients [k, d]: workers ``rows .. rows + k - 1``, or the index tensor ``rows``.

        Only those workers' buffers move: with a client pool, an unselected client's
        buffer waits unchanged for its next round.
        """
        if self.placement != "worker":
            return gradients
        if isinstance(rows, int):
            return momentum_step(self.buffer[rows:rows + gradients.shape[0]], gradients, self.mu, self.dampening,
                                 self.nesterov)
        buffers = self.buffer[rows]
        out = momentum_step(buffers, gradients, self.mu, self.dampening, self.nesterov)
        self.buffer[rows] = buffers
        return out

    def update(self, aggregate: torch.Tensor, lr: float) -> torch.Tensor:
        """The vector to subtract from the parameters, given the aggregate."""
        if self.placement == "server":
            return lr * momentum_step(self.buffer[0], aggregate, self.mu, self.dampening, self.nesterov)
        if self.placement == "update":
            return momentum_step(self.buffer[0], lr * aggregate, self.mu, self.dampening, self.nesterov)
        return lr * aggregate

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.buffer.copy_(state["buffer"])
