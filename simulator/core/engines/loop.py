"""The `loop` engine: one autograd pass per worker, the reference.

Each worker's batch goes forward through the shared module and its mean loss
is differentiated with `torch.autograd.grad`, one worker after the other, the
way a textbook training loop computes one gradient. Every worker starts from
the same batch-norm buffers; the buffers are then set to the average of the
workers' updated copies, or restored with ``update_buffers=False`` (see
`engines.base`). It works for any module autograd can differentiate, which
makes it the fallback for models `vmap` cannot take. Its per-sample clipping
(DP-SGD) is the reference too: one autograd pass per sample of each worker.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from simulator.core.engines.base import (Engine, PrivateSteps, clip_factors, local_step, seeded_global_rng,
                                         store_buffer_average)

__all__ = ["LoopEngine"]


class LoopEngine(Engine):
    """Per-worker gradients through autograd, one worker at a time."""

    name = "loop"

    def _compute(self, inputs: torch.Tensor, targets: torch.Tensor, *, update_buffers: bool,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._compute_at(inputs, targets, None, update_buffers=update_buffers, seed=seed)

    def _compute_at(self, inputs: torch.Tensor, targets: torch.Tensor, params: list[torch.Tensor] | None, *,
                    update_buffers: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each worker's gradient in turn, at the model's parameters or (``params``) at its own, set for it and
        restored after."""
        k = inputs.shape[0]
        first = self.params[0]
        gradients = torch.empty(k, self.dimension, dtype=first.dtype, device=first.device)
        losses = torch.empty(k, dtype=first.dtype, device=first.device)
        start = None if params is None else [p.detach().clone() for p in self.params]

        def worker(i: int) -> None:
            if params is not None:
                _assign(self.params, [p[i] for p in params])
            with torch.enable_grad():
                loss = self.loss_fn(self.module(inputs[i]), targets[i])
                grads = torch.autograd.grad(loss, self.params)
            torch.cat([g.reshape(-1) for g in grads], out=gradients[i])
            losses[i] = loss.detach()

        try:
            self._one_by_one(k, worker, update_buffers=update_buffers, seed=seed)
        finally:
            if start is not None:
                _assign(self.params, start)
        return gradients, losses

    def _clipped_pass(self, params: list[torch.Tensor], shared: bool, inputs: torch.Tensor, targets: torch.Tensor,
                      clip: float) -> tuple[list[torch.Tensor], torch.Tensor]:
        """One autograd pass per sample of each worker, each gradient clipped and added in turn (the reference)."""
        k, b = inputs.shape[:2]
        sums = [torch.zeros(k, *p.shape, dtype=p.dtype, device=p.device) for p in self.params]
        losses = torch.zeros(k, dtype=self.params[0].dtype, device=self.params[0].device)
        start = [p.detach().clone() for p in self.params]
        try:
            for i in range(k):
                _assign(self.params, params if shared else [p[i] for p in params])
                for j in range(b):
                    with torch.enable_grad():
                        loss = self.loss_fn(self.module(inputs[i, j:j + 1]), targets[i, j:j + 1])
                        grads = torch.autograd.grad(loss, self.params)
                    factor = clip_factors(sum(g.square().sum() for g in grads), clip)
                    for total, g in zip(sums, grads):
                        total[i].add_(g * factor)
                    losses[i] += loss.detach() / b
        finally:
            _assign(self.params, start)
        return sums, losses

    def _local(self, inputs: torch.Tensor, targets: torch.Tensor, *, lr: float, momentum: float, l2: float,
               clip: float | None, update_buffers: bool, seed: int,
               private: PrivateSteps | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """K autograd SGD steps of one client after the other, each from the same starting parameters."""
        m, steps = inputs.shape[:2]
        first = self.params[0]
        updates = torch.empty(m, self.dimension, dtype=first.dtype, device=first.device)
        losses = torch.zeros(m, dtype=first.dtype, device=first.device)
        start = [p.detach().clone() for p in self.params]

        def client(i: int) -> None:
            params = [p[None].clone() for p in start]  # a batch of one client, as local_step expects
            velocity = [torch.zeros_like(p) for p in params] if momentum else None
            for k in range(steps):
                if private is not None:  # DP-SGD's step: clipped per-sample sum plus this step's noise, over b
                    sums, loss = self._clipped_pass(params, False, inputs[i:i + 1, k], targets[i:i + 1, k],
                                                    private.clip)
                    noise = private.noise[i, k].split([p.numel() for p in self.params])
                    grads = [(s[0] + z.view_as(s[0])) / inputs.shape[2] for s, z in zip(sums, noise)]
                    loss = loss[0]
                else:
                    _assign(self.params, [p[0] for p in params])
                    with torch.enable_grad():
                        loss = self.loss_fn(self.module(inputs[i, k]), targets[i, k])
                        grads = torch.autograd.grad(loss, self.params)
                local_step(params, [g[None] for g in grads], velocity, lr=lr, momentum=momentum, l2=l2, clip=clip)
                losses[i] += loss.detach()
            torch.cat([(p[0] - p0).reshape(-1) for p, p0 in zip(params, start)], out=updates[i])

        self._one_by_one(m, client, update_buffers=update_buffers, seed=seed)
        _assign(self.params, start)
        return updates, losses / steps

    def _one_by_one(self, count: int, work: Callable[[int], None], *, update_buffers: bool, seed: int) -> None:
        """``work(i)`` for each of ``count`` workers in turn (the reference: deliberately one at a time), each
        from the same batch-norm buffers; then the buffers are restored, or set to the average of the workers'."""
        start = {name: b.detach().clone() for name, b in self.module.named_buffers()}
        updated = {name: torch.empty(count, *b.shape, dtype=b.dtype, device=b.device) for name, b in start.items()}
        with seeded_global_rng(self.device, seed):
            for i in range(count):
                _assign(self.module.buffers(), start.values())
                work(i)
                for name, b in self.module.named_buffers():
                    updated[name][i].copy_(b)
        _assign(self.module.buffers(), start.values())
        if update_buffers and updated:
            store_buffer_average(self.module, updated)


def _assign(targets: Iterable[torch.Tensor], values: Iterable[torch.Tensor]) -> None:
    """Copy each of ``values`` into its target, outside autograd."""
    with torch.no_grad():
        for target, value in zip(targets, values):
            target.copy_(value)
