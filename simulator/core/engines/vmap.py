"""The `vmap` engine: all workers' gradients in one batched pass with `torch.func`.

`functional_call` runs the module with the shared parameters (``in_dims=None``)
on one worker's batch; `grad_and_value` differentiates the mean loss;
`vmap` maps it over the stacked batches, with ``randomness="different"`` so
that each worker gets its own dropout mask. Batch-norm buffers are passed
batched (one copy per worker, ``in_dims=0``), so each worker normalises with
its own batch statistics and updates its own running statistics; the module's
buffers then become their average (see `engines.base`). With `chunk_size`, the
workers are processed `chunk_size` at a time to bound memory (the gradients
are the same; dropout masks depend on the chunking).

Per-sample clipping (`Engine.clipped_gradients`, DP-SGD) nests a second
`vmap` over each worker's samples inside the one over workers: one batched
pass gives every sample's gradient [k, b, *shape], whose norms scale the
samples before the sum. Those per-sample gradients are materialised a chunk
of workers at a time (b d values per worker, which the memory model counts
for a private run).
"""
from __future__ import annotations

import torch
from torch.func import functional_call, grad_and_value, vmap

from simulator.core.engines.base import (Engine, LossFn, PrivateSteps, batched_buffers, chunked, chunked_local_steps,
                                         clip_factors, store_buffer_average)

__all__ = ["VmapEngine"]


class VmapEngine(Engine):
    """Per-worker gradients through `torch.func.vmap` over `grad_and_value` of `functional_call`."""

    name = "vmap"

    def __init__(self, model, loss_fn: LossFn, *, chunk_size: int | None = None, seed: int = 0) -> None:
        super().__init__(model, loss_fn, chunk_size=chunk_size, seed=seed)
        module = self.module

        def worker_loss(params, buffers, inputs, targets):
            return loss_fn(functional_call(module, (params, buffers), (inputs,)), targets)

        self._batched = vmap(grad_and_value(worker_loss), in_dims=(None, 0, 0, 0), randomness="different")
        # federated clients: one set of parameters per client
        self._per_client = vmap(grad_and_value(worker_loss), in_dims=(0, 0, 0, 0), randomness="different")

        def sample_loss(params, buffers, inputs, targets):  # one sample, as a batch of one
            return loss_fn(functional_call(module, (params, buffers), (inputs[None],)), targets[None])

        per_sample = vmap(grad_and_value(sample_loss), in_dims=(None, None, 0, 0), randomness="different")
        # DP-SGD: every sample's gradient, over the samples of each worker, over the workers
        self._samples = {shared: vmap(per_sample, in_dims=(None if shared else 0, None, 0, 0), randomness="different")
                         for shared in (True, False)}

    def _compute(self, inputs: torch.Tensor, targets: torch.Tensor, *, update_buffers: bool,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        params = {name: p.detach() for name, p in self.module.named_parameters()}
        buffers = batched_buffers(self.module, inputs.shape[0])  # updated in place by batch-norm, one row per worker

        def pass_of(rows: slice) -> tuple[list[torch.Tensor], torch.Tensor]:  # one pass per chunk of workers
            grads, loss = self._batched(params, {name: b[rows] for name, b in buffers.items()}, inputs[rows],
                                        targets[rows])
            return [grads[name] for name in self.order], loss

        gradients, losses = chunked(self, inputs.shape[0], seed, pass_of)
        if update_buffers and buffers:
            store_buffer_average(self.module, buffers)
        return gradients, losses

    def _compute_at(self, inputs: torch.Tensor, targets: torch.Tensor, params: list[torch.Tensor], *,
                    update_buffers: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each worker's gradient at its own parameters (one vmap over parameters and batches), chunked."""
        buffers = batched_buffers(self.module, inputs.shape[0])

        def pass_of(rows: slice) -> tuple[list[torch.Tensor], torch.Tensor]:
            grads, loss = self._per_client({n: p[rows] for n, p in zip(self.order, params)},
                                           {n: b[rows] for n, b in buffers.items()}, inputs[rows], targets[rows])
            return [grads[n] for n in self.order], loss

        gradients, losses = chunked(self, inputs.shape[0], seed, pass_of)
        if update_buffers and buffers:
            store_buffer_average(self.module, buffers)
        return gradients, losses

    def _clipped_pass(self, params: list[torch.Tensor], shared: bool, inputs: torch.Tensor, targets: torch.Tensor,
                      clip: float) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Every sample's gradient in one nested vmap, its norm, and the clipped sums (`Engine._clipped_pass`)."""
        buffers = {name: b.detach() for name, b in self.module.named_buffers()}
        grads, losses = self._samples[shared](dict(zip(self.order, params)), buffers, inputs, targets)
        grads = [grads[n] for n in self.order]  # [k, b, *shape] each
        k, b = losses.shape
        flat = [g.reshape(k, b, -1) for g in grads]
        factors = clip_factors(sum(g.square().sum(dim=2) for g in flat), clip)  # [k, b]
        return [torch.bmm(factors.unsqueeze(1), g).reshape(g.shape[0], *p.shape[1 if not shared else 0:])
                for g, p in zip(flat, params)], losses.mean(dim=1)

    def _local(self, inputs: torch.Tensor, targets: torch.Tensor, *, lr: float, momentum: float, l2: float,
               clip: float | None, update_buffers: bool, seed: int,
               private: PrivateSteps | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """K functional SGD steps of every client at once (per-client parameters), chunked like `_compute`."""
        buffers = batched_buffers(self.module, inputs.shape[0])

        def plain(params: list[torch.Tensor], rows: slice, k: int) -> tuple[list[torch.Tensor], torch.Tensor]:
            grads, loss = self._per_client(dict(zip(self.order, params)), {n: b[rows] for n, b in buffers.items()},
                                           inputs[rows, k], targets[rows, k])
            return [grads[n] for n in self.order], loss

        gradients = plain if private is None else self._private_steps(inputs, targets, private)

        updates, losses = chunked_local_steps(self, inputs, gradients, lr=lr, momentum=momentum, l2=l2, clip=clip,
                                              seed=seed)
        if update_buffers and buffers:
            store_buffer_average(self.module, buffers)
        return updates, losses
