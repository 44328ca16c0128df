"""The operations of the grouped layouts that torch has no single call for, shared by both grouped passes.

- `SharedLinear`: a linear layer whose weight is one matrix expanded over k
  workers; one matrix product forward, per-worker weight gradients backward.
- `batch_norm`: a 2-D batch norm over the grouped layout [b, k C, H, W],
  each worker's channels over its own batch, each worker's running
  statistics moved by its own batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SharedLinear", "batch_norm"]


def batch_norm(layer: nn.BatchNorm2d, x: torch.Tensor, own: list[torch.Tensor],
               copies: list[torch.Tensor] | None, k: int) -> torch.Tensor:
    """``layer`` on the grouped layout [b, k C, H, W]: channel c of worker i is channel i C + c.

    In training mode each worker's channels are normalised over its own batch and its copies of the
    running mean and variance ([k, C] rows of ``copies``) move with its batch statistics, as the module
    would move them on that worker's batch alone; in eval mode the module's running statistics serve
    every worker.
    """
    weight, bias = (own[0].reshape(-1), own[1].reshape(-1)) if own else (None, None)
    if not layer.training:
        return F.batch_norm(x, layer.running_mean.repeat(k), layer.running_var.repeat(k), weight, bias, False, 0.0,
                            layer.eps)
    mean, var = (copies[0].view(-1), copies[1].view(-1)) if copies else (None, None)
    if copies:
        copies[2].add_(1)  # num_batches_tracked, as the module counts its batches
    return F.batch_norm(x, mean, var, weight, bias, True, layer.momentum, layer.eps)


class SharedLinear(torch.autograd.Function):
    """A linear layer whose weight is one matrix expanded over k workers: x [k, b, F] -> [k, b, O].

    The forward pass and the input gradient are single matrix products over all
    k b samples; the weight and bias gradients come back per worker
    ([k, O, F], [k, O]), as the gradient of the expanded weight.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight[0], None if bias is None else bias[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad @ weight[0] if ctx.needs_input_grad[0] else None
        grad_weight = torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(dim=1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias
