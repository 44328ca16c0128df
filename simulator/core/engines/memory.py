"""How much memory a batched engine needs, and the chunk of workers that fits a budget.

The vmap and grouped engines process k workers in one pass. Their peak memory
grows linearly in k: each worker holds the activations its backward pass
saves (measured here, once, on one batch of b samples), its flat gradient row
of the [k, d] output and the per-parameter gradients before they are
concatenated into that row (2 d values), and the fixed part (the model, the
data) does not depend on k:

    peak(k) ~ fixed + k * (activations(b) + 2 d * element size)

`chunk_for(budget)` is the largest k whose variable part fits in ``budget``
bytes. The simulator uses it when the engine spec gives no ``chunk_size``: with
its ``memory_budget`` in GiB, or on a GPU with 80% of its free memory, so that
a thousand simulated workers run on one GPU in chunks. On a CPU without a
budget every worker goes in one pass.
"""
from __future__ import annotations

import math

import torch

__all__ = ["activation_bytes", "worker_bytes", "chunk_for", "default_budget"]


def activation_bytes(module: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn) -> int:
    """Bytes the backward pass of one batch keeps alive: every tensor autograd saves, counted once.

    The parameters themselves are left out: the workers of a batched pass share them.
    """
    shared = {p.untyped_storage().data_ptr() for p in module.parameters()}
    storages: dict[tuple, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        pointer = tensor.untyped_storage().data_ptr()
        if pointer not in shared:  # a view (the batch of a dataset) counts its own elements
            storages[pointer, tensor.storage_offset(), tuple(tensor.shape)] = tensor.numel() * tensor.element_size()
        return tensor

    was_training = module.training
    module.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.enable_grad():
            loss_fn(module(inputs), targets)
    finally:
        module.train(was_training)
    return sum(storages.values())


def worker_bytes(module: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn) -> int:
    """The memory one more worker costs a batched pass: its activations and two flat gradients."""
    d = sum(p.numel() for p in module.parameters())
    size = next(module.parameters()).element_size()
    return activation_bytes(module, inputs, targets, loss_fn) + 2 * d * size


def chunk_for(budget: float, per_worker: int, workers: int) -> int:
    """The most workers (at least 1, at most ``workers``) whose memory fits ``budget`` bytes."""
    return max(1, min(workers, math.floor(budget / max(per_worker, 1))))


def default_budget(device: torch.device, gib: float | None) -> float | None:
    """Bytes for the workers' pass: ``gib`` GiB if given, else 80% of a GPU's free memory, else no limit (None)."""
    if gib is not None:
        return gib * 2**30
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return 0.8 * free
    return None
