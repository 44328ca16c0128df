"""Per-sample clipping in the grouped engine: DP-SGD's clipped sums from one forward and one backward.

DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016)
scales each sample's gradient g_j by min(1, C / ||g_j||) before the sum. The
grouped pass never forms g_j. Its forward runs with the workers' parameters
detached, and a `Tape` records the input x and the output z of every layer
with parameters; one backward of the sum of every sample's own loss gives
delta = dloss/dz for all of them at once (no weight gradients). A layer's
per-sample weight gradient is a product of x and delta, so:

- a linear layer at one position per sample: ||g_j||^2 = ||x_j||^2 ||delta_j||^2
  (the "ghost" norm of Goodfellow, "Efficient per-example gradient
  computations", 2015); at T positions (a linear layer on [b, T, F]) the
  product no longer factorises: sum_{s,t} (x_s . x_t)(delta_s . delta_t), the
  Gram form of ghost clipping (Li et al., "Large Language Models Can Be Strong
  Differentially Private Learners", ICLR 2022), or the per-sample gradient
  itself where that is smaller (T (F + O) >= F O, the mixed rule of Bu et
  al., NeurIPS 2022);
- a convolution: its per-sample weight gradients are a grouped weight
  gradient with the k b samples as groups (the grouped engine's own trick,
  with samples in the place of workers), channels-last, in calls of about
  `PER_CALL` values, kept only for their norms;
- biases: ||sum over positions of delta_j||^2.

With the factors known, each layer's clipped sum is its weight gradient with
delta scaled per sample: a batched matrix product for a linear layer, a
grouped weight gradient (the workers as groups) for a convolution. Only one
layer's per-sample gradients exist at a time; the cost is one forward, one
backward and, for convolutions, one more weight gradient.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from experiments.tools import UserException
from simulator.core.engines.base import clip_factors

__all__ = ["IN_PLACE", "PER_CALL", "Tape", "clipped_sums"]

IN_PLACE = ("The grouped engine's per-sample clipping cannot take this model: an in-place operation overwrites a "
            "layer's input or output; use --engine vmap.")

# Per-sample weight gradients a convolution computes per call: about 1 MiB of float32, which keeps oneDNN's
# grouped weight gradient in cache (measured 4x faster than all b k samples in one call for a 16 -> 32, 5x5 layer)
PER_CALL = 2**18


@dataclass
class _Linear:
    """A linear layer's record: input [k, b, T, F] and output (its delta read back as [k, b, T, O])."""

    x: torch.Tensor
    z: torch.Tensor
    features_last: bool  # the output is [k, b T, O] (else [k, O, b], the per-client dense layout)
    slots: list[int]  # the weight's and the bias's index among the engine's parameters

    def delta(self, grad: torch.Tensor) -> torch.Tensor:
        k, b, t = self.x.shape[:3]
        return grad.reshape(k, b, t, -1) if self.features_last else grad.transpose(1, 2).reshape(k, b, 1, -1)

    def squared_norms(self, delta: torch.Tensor) -> torch.Tensor:
        x = self.x
        t, f, o = x.shape[2], x.shape[3], delta.shape[3]
        if t == 1:
            weight = x.square().sum(dim=(2, 3)) * delta.square().sum(dim=(2, 3))
        elif t * (f + o) < f * o:  # Gram form: [k, b, T, T] products
            weight = (x @ x.transpose(2, 3) * (delta @ delta.transpose(2, 3))).sum(dim=(2, 3))
        else:  # the per-sample gradients [k, b, O, F]
            weight = (delta.transpose(2, 3) @ x).square().sum(dim=(2, 3))
        bias = delta.sum(dim=2).square().sum(dim=2) if len(self.slots) > 1 else 0.0
        return weight + bias

    def clipped(self, delta: torch.Tensor, factors: torch.Tensor) -> list[torch.Tensor]:
        k, b, t, f = self.x.shape
        scaled = (delta * factors[:, :, None, None]).reshape(k, b * t, -1)
        weight = scaled.transpose(1, 2) @ self.x.reshape(k, b * t, f)
        return [weight, scaled.sum(dim=1)][:len(self.slots)]


@dataclass
class _Conv:
    """A convolution's record on the grouped layout: input [b, k C, H, W], output [b, k O, H', W']."""

    layer: nn.Conv2d
    x: torch.Tensor
    z: torch.Tensor
    k: int
    slots: list[int]

    def delta(self, grad: torch.Tensor) -> torch.Tensor:
        return grad

    def squared_norms(self, delta: torch.Tensor) -> torch.Tensor:
        """Per-sample weight gradients as one grouped weight gradient with a group per sample (and per group of
        the layer), channels-last, PER_CALL values at a time; their squared norms [k, b] (bias included)."""
        b, layer = delta.shape[0], self.layer
        x, delta_1 = _one_image(self.x), _one_image(delta)  # [1, b k C, H, W], [1, b k O, H', W']
        size = layer.weight.numel() // layer.groups  # one group's weight gradient
        step = max(1, PER_CALL // size)  # groups per call (each sample brings k layer.groups of them)
        count, c, o = b * self.k * layer.groups, layer.in_channels // layer.groups, layer.out_channels // layer.groups
        squares = torch.cat([
            torch.nn.grad.conv2d_weight(x[:, g * c:(g + n) * c], (n * o, c, *layer.kernel_size),
                                        delta_1[:, g * o:(g + n) * o], layer.stride, layer.padding, layer.dilation,
                                        n).square().sum(dim=(1, 2, 3))
            for g, n in ((g, min(step, count - g)) for g in range(0, count, step))])
        norms = squares.reshape(b, self.k, -1).sum(dim=2)
        if len(self.slots) > 1:
            norms = norms + delta.sum(dim=(2, 3)).reshape(b, self.k, -1).square().sum(dim=2)
        return norms.t()

    def clipped(self, delta: torch.Tensor, factors: torch.Tensor) -> list[torch.Tensor]:
        b, k = delta.shape[0], self.k
        scaled = (delta.reshape(b, k, -1, *delta.shape[2:]) * factors.t()[:, :, None, None, None])
        layer = self.layer
        size = (k * layer.out_channels, layer.in_channels // layer.groups, *layer.kernel_size)
        weight = torch.nn.grad.conv2d_weight(self.x, size, scaled.reshape(delta.shape), layer.stride, layer.padding,
                                             layer.dilation, k * layer.groups)  # the workers as groups
        weight = weight.reshape(k, *layer.weight.shape)
        return [weight, scaled.sum(dim=(0, 3, 4))][:len(self.slots)]


def _one_image(t: torch.Tensor) -> torch.Tensor:
    """[b, C, H, W] as one image [1, b C, H, W] whose channels are the samples' side by side, channels-last
    (one copy)."""
    b, c, h, w = t.shape
    return t.permute(2, 3, 0, 1).reshape(1, h, w, b * c).permute(0, 3, 1, 2)


class Tape:
    """What a grouped forward pass records for per-sample clipping: each layer with parameters, in order.

    ``copy``: the model has in-place activations, which would overwrite a recorded output; the pass then
    goes on with a copy of it. Any other in-place change of a recorded tensor is caught (`check`).
    """

    def __init__(self, copy: bool = False) -> None:
        self.entries: list[_Linear | _Conv] = []
        self.copy = copy
        self.versions: list[tuple[torch.Tensor, int]] = []  # each recorded tensor and its version when recorded

    def _out(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if not z.requires_grad:  # the first layer: the parameters are detached and the input needs no gradient
            z.requires_grad_()
        self.versions += [(x, x._version), (z, z._version)]
        return z.clone() if self.copy else z

    def conv(self, layer: nn.Conv2d, x: torch.Tensor, z: torch.Tensor, k: int, slots: list[int]) -> torch.Tensor:
        self.entries.append(_Conv(layer, x.detach(), z, k, slots))
        return self._out(x, z)

    def linear(self, x: torch.Tensor, z: torch.Tensor, b: int, features_last: bool, slots: list[int]) -> torch.Tensor:
        """x [k, b T, F] with its output [k, b T, O] (``features_last``), or x [k, F, b] with z [k, O, b]."""
        flat = x.detach()
        flat = flat.reshape(x.shape[0], b, -1, x.shape[2]) if features_last else flat.transpose(1, 2).unsqueeze(2)
        self.entries.append(_Linear(flat, z, features_last, slots))
        return self._out(x, z)

    def check(self) -> None:
        """Refuse a pass in which an in-place operation changed a recorded input or output after it was recorded
        (its per-sample norms would be wrong)."""
        if any(t._version != version for t, version in self.versions):
            raise UserException(IN_PLACE)


def clipped_sums(tape: Tape, losses: torch.Tensor, params: list[torch.Tensor], clip: float) -> list[torch.Tensor]:
    """Each worker's sum of its samples' gradients clipped to ``clip``, per parameter ([k, *shape], flat order).

    ``losses`` [k, b] are the samples' own losses, computed from the taped pass; ``params`` are the model's
    parameters (their shapes, dtype and device); one that no layer on the tape holds gets zeros.
    """
    k = losses.shape[0]
    tape.check()
    grads = torch.autograd.grad(losses.sum(), [e.z for e in tape.entries])
    deltas = [e.delta(g) for e, g in zip(tape.entries, grads)]
    factors = clip_factors(sum(e.squared_norms(d) for e, d in zip(tape.entries, deltas)), clip)  # [k, b]
    sums: list[torch.Tensor | None] = [None] * len(params)
    for entry, delta in zip(tape.entries, deltas):
        for slot, value in zip(entry.slots, entry.clipped(delta, factors)):
            sums[slot] = value.reshape(k, *params[slot].shape)
    return [s if s is not None else p.new_zeros(k, *p.shape) for s, p in zip(sums, params)]
