"""Momentum placements and the server's parameter update, on flat vectors.

Four placements (buffers start at zero; mu the momentum, d the dampening):

- worker: each worker keeps m_i <- mu m_i + (1 - d) g_i and sends m_i (or
  g_i + mu m_i with torch's Nesterov); the server applies lr * aggregate.
- server: ByzantineMomentum's ``server`` placement (El Mhamdi et al., ICLR
  2021, their ``attack.py``): before the rule, each worker's vector becomes
  (1 - d) g_i + mu G_{t-1}, G_{t-1} the previous aggregate; the new
  aggregate G_t is kept as the buffer and the server applies lr * G_t.
- aggregate: the server keeps m <- mu m + (1 - d) G on the aggregate G and
  applies lr * m (torch.optim.SGD's rule, except that the buffer starts at
  zero, so dampening also scales the first step). This is ByzantineMomentum's
  ``update`` placement, under any learning-rate schedule.
- update: the server keeps momentum on the update itself,
  u <- mu u + (1 - d) lr G, and applies u; it equals `aggregate` while the
  learning rate is constant.

Nesterov comes in two forms. ``nesterov=True`` is torch's: the direction is
v + mu m for the vector v the buffer just took in (worker, aggregate,
update). ``nesterov="lookahead"`` is Sutskever et al.'s, as ByzantineMomentum
computes it: each honest gradient is taken at the look-ahead point
params - mu * (the buffer's own step), a worker's own buffer with momentum at
the workers, the server's buffer otherwise, and the buffers then move
classically. `Momentum.lookahead` gives that shift.

The run-wide ``aggregate`` placement was called ``server`` before
ByzantineMomentum's placement took that name; its run ids did not change
(`simulator.core.identity`). Weight decay (weight_decay * params, added to
the aggregate by the server before its optimiser) is the simulation's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from simulator.core.config import Config

__all__ = ["LOOKAHEAD", "PLACEMENTS", "Momentum", "momentum_step"]

PLACEMENTS = ("worker", "server", "aggregate", "update")
LOOKAHEAD = "lookahead"  # the value of `nesterov` for gradients taken at the look-ahead point


def momentum_step(buffer: torch.Tensor, vector: torch.Tensor, mu: float, dampening: float, nesterov: bool) -> torch.Tensor:
    """Update `buffer` in place with `vector`; return the direction to use (torch's Nesterov with ``nesterov``).

    Without Nesterov the direction is the buffer itself (no copy): callers read it
    within the step and never write to it.
    """
    buffer.mul_(mu).add_(vector, alpha=1.0 - dampening)
    return vector + mu * buffer if nesterov else buffer


class Momentum:
    """Momentum state of one run, for the configured placement (see the module docstring)."""

    def __init__(self, config: "Config", dim: int, device: torch.device, dtype: torch.dtype):
        self.mu, self.dampening = config.momentum, config.dampening
        self.nesterov = config.nesterov is True  # torch's form; the look-ahead form moves where gradients are taken
        self.looks_ahead = config.nesterov == LOOKAHEAD and config.momentum > 0
        self.placement = config.momentum_at if config.momentum > 0 else None
        rows = config.pool if self.placement == "worker" else 1  # one buffer per worker, or per client of a pool
        self.buffer = torch.zeros(rows, dim, device=device, dtype=dtype)

    def at_workers(self, gradients: torch.Tensor, rows: int | torch.Tensor) -> torch.Tensor:
        """What workers send, given their gradients [k, d]: workers ``rows .. rows + k - 1``, or the index tensor ``rows``.

        Only those workers' buffers move: with a client pool, an unselected client's
        buffer waits unchanged for its next round.
        """
        if self.placement == "server":
            return gradients.mul(1.0 - self.dampening).add_(self.buffer[0], alpha=self.mu)
        if self.placement != "worker":
            return gradients
        if isinstance(rows, int):
            return momentum_step(self.buffer[rows:rows + gradients.shape[0]], gradients, self.mu, self.dampening,
                                 self.nesterov)
        buffers = self.buffer[rows]
        out = momentum_step(buffers, gradients, self.mu, self.dampening, self.nesterov)
        self.buffer[rows] = buffers
        return out

    def lookahead(self, lr: float, rows: int | torch.Tensor, count: int) -> torch.Tensor | None:
        """The shift to subtract from the parameters before gradients are taken (None without look-ahead).

        [1, d] for the server's buffer; [count, d] for the workers ``rows`` (as in `at_workers`) with momentum
        at the workers. The `update` buffer holds steps already scaled by lr; the others hold gradients.
        """
        if not self.looks_ahead:
            return None
        if self.placement == "worker":
            buffers = self.buffer[rows:rows + count] if isinstance(rows, int) else self.buffer[rows]
            return buffers * (self.mu * lr)
        return self.buffer[:1] * (self.mu if self.placement == "update" else self.mu * lr)

    def keep(self, rule_output: torch.Tensor) -> None:
        """Momentum at `server`: keep what the rule returned this step, the shift of the next step's vectors."""
        if self.placement == "server":
            self.buffer[0].copy_(rule_output)

    def update(self, aggregate: torch.Tensor, lr: float) -> torch.Tensor:
        """The vector to subtract from the parameters, given the aggregate (plus any weight decay)."""
        if self.placement == "aggregate":
            return lr * momentum_step(self.buffer[0], aggregate, self.mu, self.dampening, self.nesterov)
        if self.placement == "update":
            return momentum_step(self.buffer[0], lr * aggregate, self.mu, self.dampening, self.nesterov)
        return lr * aggregate

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.buffer.copy_(state["buffer"])
