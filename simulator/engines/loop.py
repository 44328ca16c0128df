"""The `loop` engine: one `Model.backprop` per worker, the reference.

Each worker's batch goes through the model's own training step
(`experiments.Model.backprop` on a one-batch `experiments.Dataset`), one after
the other. Every worker starts from the same batch-norm buffers; the buffers
are then set to the average of the workers' updated copies, or restored with
``update_buffers=False`` (see `engines.base`). It works for any model that
`Model.backprop` can train, which makes it the fallback for models `vmap`
cannot take. Note that `backprop` leaves the last worker's gradient in the
model's gradient vector.
"""
from __future__ import annotations

import torch

from experiments.tools import UserException
from simulator.engines.base import Engine, LossFn, seeded_global_rng, store_buffer_average

__all__ = ["LoopEngine"]


class LoopEngine(Engine):
    """Per-worker gradients through `model.backprop`, one worker at a time."""

    name = "loop"

    def __init__(self, model, loss_fn: LossFn, *, chunk_size: int | None = None, seed: int = 0) -> None:
        super().__init__(model, loss_fn, chunk_size=chunk_size, seed=seed)
        if not hasattr(model, "backprop"):
            raise UserException("The loop engine needs an experiments.Model (it calls model.backprop).")
        import experiments  # the substrate; imported here so the vmap engine works with plain modules

        self._experiments = experiments
        self._loss = experiments.Loss(lambda output, target, params: loss_fn(output, target))

    def _compute(self, inputs: torch.Tensor, targets: torch.Tensor, *, update_buffers: bool,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = inputs.shape[0]
        flat = self.model.get()
        gradients = torch.empty(k, flat.numel(), dtype=flat.dtype, device=flat.device)
        losses = torch.empty(k, dtype=flat.dtype, device=flat.device)
        start = {name: b.detach().clone() for name, b in self.module.named_buffers()}
        updated = {name: torch.empty(k, *b.shape, dtype=b.dtype, device=b.device) for name, b in start.items()}
        with seeded_global_rng(self.device, seed):
            for i in range(k):  # the reference: deliberately one worker at a time
                self._set_buffers(start)
                batch = self._experiments.Dataset((inputs[i], targets[i]))
                gradient, loss = self.model.backprop(batch, self._loss, outloss=True)
                gradients[i].copy_(gradient)
                losses[i] = loss.detach()
                for name, b in self.module.named_buffers():
                    updated[name][i].copy_(b)
        self._set_buffers(start)
        if update_buffers and updated:
            store_buffer_average(self.module, updated)
        return gradients, losses

    def _set_buffers(self, values: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, b in self.module.named_buffers():
                b.copy_(values[name])
