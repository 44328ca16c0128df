"""One contiguous flat vector behind a list of tensors.

`Model` keeps every parameter (and every gradient) as a view into a single 1-D
tensor, so that a whole model is read, written, sent or aggregated as one vector
without copies.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["flatten", "relink_data", "relink_grads", "sync_grads"]


def flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """A new contiguous 1-D tensor holding the concatenated values of `tensors`."""
    if not tensors:
        return torch.empty(0)
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def _views(flat: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    views, offset = [], 0
    for p in params:
        n = p.numel()
        views.append(flat[offset:offset + n].view_as(p))
        offset += n
    return views


def relink_data(params: Sequence[torch.nn.Parameter], flat: torch.Tensor) -> None:
    """Make every parameter's data a view into `flat` (sizes must add up)."""
    for p, view in zip(params, _views(flat, params)):
        p.data = view


def relink_grads(params: Sequence[torch.nn.Parameter], flat: torch.Tensor) -> None:
    """Make every parameter's ``.grad`` a view into `flat`."""
    for p, view in zip(params, _views(flat, params)):
        p.grad = view


def sync_grads(params: Sequence[torch.nn.Parameter], flat: torch.Tensor) -> None:
    """Restore the gradient views after autograd replaced or dropped some ``.grad``.

    Autograd accumulates in place into an existing ``.grad`` in the usual case, but
    it replaces the tensor when, e.g., ``create_graph=True``; a replaced gradient is
    copied back into `flat` and the view is restored.
    """
    for p, view in zip(params, _views(flat, params)):
        grad = p.grad
        if grad is None:
            view.zero_()
        elif grad.data_ptr() != view.data_ptr() or grad.shape != view.shape:
            view.copy_(grad.detach())
        else:
            continue
        p.grad = view
