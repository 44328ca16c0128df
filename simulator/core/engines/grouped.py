"""The `grouped` engine: every worker's gradient from one explicitly batched forward and backward.

For models built from Conv2d, BatchNorm2d, Linear, ReLU, max-pooling, Flatten,
dropout and log-softmax (an `nn.Sequential` of them), the k workers' copies of the
parameters are stacked along a leading dimension (shared parameters expanded
without copying, federated clients' own parameters as they are) and the
network is evaluated for all workers at once:

- a convolution runs as one grouped convolution: the workers' batches side by
  side as channels ([b, k C, H, W], channels-last in memory, where oneDNN's
  grouped weight gradient is as fast as an ungrouped one), the weights as k
  groups;
- a linear layer runs as one batched matrix product, features first
  ([k, O, F] x [k, F, b]: the contiguous weights need no transposed copy);
- a 2-D batch norm runs as one batch norm over the k C channels: each
  worker's channel is normalised over its own batch, and each worker's copy
  of the running statistics moves with its own batch statistics (the copies
  are then averaged, as every engine does);
- activations, pooling and dropout act on those layouts unchanged.

The sum over workers of each worker's mean loss is differentiated once with
autograd: worker i's loss depends only on its own copy, so the gradient with
respect to copy i is worker i's gradient. This avoids `torch.func.vmap`'s
batching of convolution backward, the gap between the vmap engine and one
forward + backward over all samples. Models with other layers (a 1-D batch
norm, say) are refused at construction with the reason; the loss must take torch's
``reduction`` argument (cross-entropy and nll do). The gradients agree with
the loop engine's to float tolerance (tested), and dropout masks differ from
the other engines' (as they differ between those). Per-sample clipping
(DP-SGD) runs the same pass with a tape of each layer's input and output
(`simulator.core.engines.grouped_private`).
"""
from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from experiments.tools import UserException
from simulator.core.engines.base import (Engine, LossFn, PrivateSteps, batched_buffers, chunked,
                                         chunked_local_steps, store_buffer_average)
from simulator.core.engines.grouped_ops import SharedLinear, batch_norm
from simulator.core.engines.grouped_graph import GraphPass, graph_unsupported
from simulator.core.engines.grouped_private import IN_PLACE, Tape, clipped_sums

__all__ = ["GroupedEngine", "SUPPORTED"]

SUPPORTED = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Dropout, nn.Dropout2d,
             nn.LogSoftmax)


class GroupedEngine(Engine):
    """Per-worker gradients through one grouped forward and backward (see the module docstring)."""

    name = "grouped"

    def __init__(self, model, loss_fn: LossFn, *, chunk_size: int | None = None, seed: int = 0) -> None:
        super().__init__(model, loss_fn, chunk_size=chunk_size, seed=seed)
        reason = self.unsupported(self.module, loss_fn)
        if reason is not None:
            raise UserException(f"The grouped engine takes a sequence of Conv2d, BatchNorm2d, Linear, ReLU, "
                                f"MaxPool2d, Flatten, dropout and LogSoftmax layers, or a model whose layers with "
                                f"parameters are Conv2d, BatchNorm2d and Linear, and a loss with a reduction "
                                f"argument; {reason}.")
        # not a plain sequence (residual blocks): the traced graph, checked against the model on its first inputs
        self.graph = GraphPass(self.module, self.params) if _sequence_unsupported(self.module) else None
        self._verified = self.graph is None
        self.layers = _layers(self.module)
        owner = {id(p): i for i, p in enumerate(self.params)}
        self.slots = [[owner[id(p)] for p in layer.parameters(recurse=False)] for layer in self.layers]
        prefix = {id(m): name for name, m in self.module.named_modules()}  # a layer's buffers by their full names
        self.buffer_names = [[f"{prefix[id(layer)]}.{n}".lstrip(".") for n, _ in layer.named_buffers(recurse=False)]
                             for layer in self.layers]
        self.dense = not any(isinstance(layer, nn.Conv2d) for layer in self.layers)

    @staticmethod
    def unsupported(module: nn.Module, loss_fn: LossFn | None = None) -> str | None:
        """Why this engine cannot take ``module`` (and ``loss_fn``), from their structure alone; None if it can.

        Nothing is run: the layers' types and settings, and whether the loss takes ``reduction``. A model
        that is no plain sequence of supported layers may still have a grouped graph (`graph_unsupported`),
        whose forward pass is then checked on real inputs (`differs`) before it computes anything.
        """
        if loss_fn is not None and not _takes_reduction(loss_fn):
            return "its loss takes no reduction argument"
        sequence = _sequence_unsupported(module)
        if sequence is None:
            return None
        graph = graph_unsupported(module)
        if graph is None:
            return None
        return sequence if isinstance(module, nn.Sequential) else graph

    @staticmethod
    def sequential(module: nn.Module) -> bool:
        """Whether ``module`` runs on the sequential grouped pass (not the traced graph of `grouped_graph`)."""
        return _sequence_unsupported(module) is None

    def differs(self, inputs: torch.Tensor) -> str | None:
        """Why this engine's forward pass is not the model's own on ``inputs`` [b, *shape], or None if it is.

        Catches what the layers' types cannot show (a Sequential with a forward of its own, an operation
        of a residual model that mixes channels): two workers, each with one of the first two samples, must
        get what the module gives each sample, in eval mode (no dropout, no randomness drawn) and without
        gradients, to float tolerance.
        """
        was_training = self.module.training
        self.module.eval()
        k = min(2, len(inputs))
        try:
            with torch.no_grad():
                own = self.module(inputs[:k])
                stacked = [p.detach()[None].expand(k, *p.shape) for p in self.params]
                mine = self._forward(stacked, inputs[:k, None], True)[:, :, 0]
        except Exception as error:  # noqa: BLE001 - any failure of the grouped pass means: not this engine
            return f"its grouped forward pass fails ({type(error).__name__}: {error})"
        finally:
            self.module.train(was_training)
        if own.shape != mine.shape or not torch.allclose(own, mine, rtol=1e-3, atol=1e-4):
            return "its grouped forward pass differs from the model's own (a forward of its own?)"
        return None

    def _verify(self, samples: torch.Tensor) -> None:
        """Before the graph's first use: its forward pass must be the model's own on these samples [b, *shape]."""
        if self._verified:
            return
        reason = self.differs(samples)
        if reason is not None:
            raise UserException(f"The grouped engine cannot take this model: {reason}; use --engine vmap.")
        self._verified = True

    # ------------------------------------------------------------ forward
    def _forward(self, stacked: list[torch.Tensor], inputs: torch.Tensor, shared: bool,
                 copies: dict[str, torch.Tensor] | None = None, tape: Tape | None = None) -> torch.Tensor:
        """Log-probabilities or logits [k, classes, b] of k workers from their parameters (stacked [k, ...]).

        ``copies``: the k workers' own copies of the buffers ([k, *shape] views, updated in place by a
        batch norm in training mode; None: the batch statistics move no running statistics).

        ``shared``: the stacked parameters are one set expanded over the workers (per-worker gradients
        at the model's parameters), so a linear layer is one matrix product over all k b samples and
        only its weight gradient is split by worker (`SharedLinear`); otherwise every worker has its
        own parameters (a federated client's local steps) and a linear layer is a batched product.
        ``tape``: record each layer with parameters for per-sample clipping (`grouped_private`).
        """
        if self.graph is not None:
            return self.graph.forward(stacked, inputs, shared, copies, self.module.training, tape)
        k, b = inputs.shape[:2]
        if self.dense:  # no convolution: straight to the dense layout
            x, grouped = inputs.reshape(k, b, -1), False
            x = x if shared else x.transpose(1, 2)
        else:
            x, grouped = inputs.transpose(0, 1).reshape(b, k * inputs.shape[2], *inputs.shape[3:]), True
        if grouped and x.dim() == 4:  # channels-last: oneDNN's grouped convolution backward is much faster so
            x = x.contiguous(memory_format=torch.channels_last)
        for layer, slots, names in zip(self.layers, self.slots, self.buffer_names):
            own = [stacked[i] for i in slots]
            if isinstance(layer, nn.BatchNorm2d):
                x = batch_norm(layer, x, own, [copies[n] for n in names] if copies else None, k)
            elif isinstance(layer, nn.Conv2d):
                weight, bias = own[0], own[1] if len(own) > 1 else None
                z = F.conv2d(x, weight.reshape(-1, *weight.shape[2:]), None if bias is None else bias.reshape(-1),
                             layer.stride, layer.padding, layer.dilation, groups=k)
                x = z if tape is None else tape.conv(layer, x, z, k, slots)
            elif isinstance(layer, (nn.Flatten, nn.Linear)) and grouped:  # to [k, b, features] or [k, features, b]
                x, grouped = x.reshape(b, k, -1), False
                x = x.transpose(0, 1).contiguous() if shared else x.permute(1, 2, 0)
            if isinstance(layer, nn.Linear):
                weight, bias = own[0], own[1] if len(own) > 1 else None
                if shared:
                    z = SharedLinear.apply(x, weight, bias)
                else:
                    z = torch.bmm(weight, x) if bias is None else torch.baddbmm(bias.unsqueeze(2), weight, x)
                x = z if tape is None else tape.linear(x, z, b, shared, slots)
            elif isinstance(layer, nn.LogSoftmax):
                x = F.log_softmax(x, dim=-1 if shared else 1)
            elif not isinstance(layer, (nn.Conv2d, nn.BatchNorm2d, nn.Flatten)):  # ReLU, pooling, dropout
                x = layer(x)
        if grouped:
            return x.reshape(b, k, -1).permute(1, 2, 0)
        return x.transpose(1, 2) if shared else x

    def _per_worker(self, stacked: list[torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor,
                    copies: dict[str, torch.Tensor], shared: bool = False) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each worker's gradients (stacked like its parameters) and mean loss [k]; ``copies`` as `_forward`'s."""
        with torch.enable_grad():
            outputs = self._forward(stacked, inputs, shared, copies)  # [k, classes, b]: the loss's (N, C, d) form
            losses = self.loss_fn(outputs, targets, reduction="none").mean(dim=1)
            grads = torch.autograd.grad(losses.sum(), stacked)
        return list(grads), losses.detach()

    def _clipped_pass(self, params: list[torch.Tensor], shared: bool, inputs: torch.Tensor, targets: torch.Tensor,
                      clip: float) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The taped grouped pass with detached parameters, then the clipped sums (`grouped_private`)."""
        self._verify(inputs[0])
        k = inputs.shape[0]
        stacked = [p.detach().expand(k, *p.shape) if shared else p.detach() for p in params]
        tape = Tape(copy=any(getattr(m, "inplace", False) for m in self.module.modules()))
        with torch.enable_grad():
            try:
                outputs = self._forward(stacked, inputs, shared, None, tape)
            except RuntimeError as error:  # an in-place operation on the first layer's output (a leaf here)
                if "in-place" not in str(error):
                    raise
                raise UserException(IN_PLACE) from None
            losses = self.loss_fn(outputs, targets, reduction="none")  # [k, b]: each sample's own loss
            sums = clipped_sums(tape, losses, self.params, clip)
        return sums, losses.detach().mean(dim=1)

    # ------------------------------------------------------------ engine
    def _compute(self, inputs: torch.Tensor, targets: torch.Tensor, *, update_buffers: bool,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        self._verify(inputs[0])
        buffers = batched_buffers(self.module, inputs.shape[0])  # each worker's copy, moved by its batch norms

        def gradients(rows: slice) -> tuple[list[torch.Tensor], torch.Tensor]:
            shared = [p.detach().requires_grad_().expand(rows.stop - rows.start, *p.shape) for p in self.params]
            return self._per_worker(shared, inputs[rows], targets[rows], _rows(buffers, rows), shared=True)

        return _kept(self, buffers, update_buffers, chunked(self, inputs.shape[0], seed, gradients))

    def _compute_at(self, inputs: torch.Tensor, targets: torch.Tensor, params: list[torch.Tensor], *,
                    update_buffers: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        self._verify(inputs[0])
        buffers = batched_buffers(self.module, inputs.shape[0])

        def gradients(rows: slice) -> tuple[list[torch.Tensor], torch.Tensor]:  # every worker its own copy
            return self._per_worker([p[rows].detach().requires_grad_() for p in params], inputs[rows], targets[rows],
                                    _rows(buffers, rows))

        return _kept(self, buffers, update_buffers, chunked(self, inputs.shape[0], seed, gradients))

    def _local(self, inputs: torch.Tensor, targets: torch.Tensor, *, lr: float, momentum: float, l2: float,
               clip: float | None, update_buffers: bool, seed: int,
               private: PrivateSteps | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        self._verify(inputs[0, 0])
        buffers = batched_buffers(self.module, inputs.shape[0])  # a client's copy moves at each of its steps

        def plain(params: list[torch.Tensor], rows: slice, k: int) -> tuple[list[torch.Tensor], torch.Tensor]:
            leaves = [p.detach().requires_grad_() for p in params]  # the same storage as params
            return self._per_worker(leaves, inputs[rows, k], targets[rows, k], _rows(buffers, rows))

        gradients = plain if private is None else self._private_steps(inputs, targets, private)

        return _kept(self, buffers, update_buffers, chunked_local_steps(self, inputs, gradients, lr=lr,
                                                                        momentum=momentum, l2=l2, clip=clip, seed=seed))


def _rows(buffers: dict[str, torch.Tensor], rows: slice) -> dict[str, torch.Tensor]:
    """The copies of workers ``rows``: views, so that a batch norm's in-place update reaches ``buffers``."""
    return {name: b[rows] for name, b in buffers.items()}


def _kept(engine: GroupedEngine, buffers: dict[str, torch.Tensor], update: bool,
          result: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``result``, after the module's buffers became the average of the workers' copies (when ``update``)."""
    if update and buffers:
        store_buffer_average(engine.module, buffers)
    return result


def _sequence_unsupported(module: nn.Module) -> str | None:
    """Why ``module`` is no plain sequence the sequential grouped pass takes, or None."""
    layers = _layers(module)
    odd = sorted({type(layer).__name__ for layer in layers if not isinstance(layer, SUPPORTED)})
    if odd:
        return f"this model has {', '.join(odd)}"
    if any(isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.padding_mode != "zeros")
           for layer in layers):
        return "this model has a grouped or non-zero-padded convolution"
    if any(isinstance(layer, nn.Flatten) and (layer.start_dim, layer.end_dim) != (1, -1) for layer in layers):
        return "this model flattens other dimensions than all but the batch's"
    if any(isinstance(layer, nn.LogSoftmax) and layer.dim not in (1, -1) for layer in layers):
        return "this model's LogSoftmax is not over the classes"
    if any(isinstance(layer, nn.MaxPool2d) and layer.return_indices for layer in layers):
        return "this model's pooling returns indices"
    if any(isinstance(layer, nn.BatchNorm2d) and (layer.momentum is None or not layer.track_running_stats)
           for layer in layers):
        return "this model's BatchNorm2d keeps a cumulative average or no running statistics"
    seen_conv = False
    for layer in layers:  # a linear layer on the spatial layout needs a Flatten before it
        seen_conv = (seen_conv or isinstance(layer, nn.Conv2d)) and not isinstance(layer, nn.Flatten)
        if seen_conv and isinstance(layer, nn.Linear):
            return "this model has a linear layer on a convolution's output without a Flatten"
        if not seen_conv and isinstance(layer, nn.BatchNorm2d):
            return "this model has a BatchNorm2d outside a convolution's output"
    return None


def _layers(module: nn.Module) -> list[nn.Module]:
    """The layers the grouped pass runs in turn: a Sequential's children, else the module itself."""
    return list(module.children()) if isinstance(module, nn.Sequential) else [module]


def _takes_reduction(loss_fn: LossFn) -> bool:
    """Whether ``loss_fn`` accepts ``reduction=`` (torch's functional losses do); unknown signatures count as no."""
    try:
        parameters = inspect.signature(loss_fn).parameters
    except (TypeError, ValueError):
        return False
    return "reduction" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
