"""The grouped engine's pass for a model that is not a plain sequence (a ResNet's residual blocks).

The model's forward is traced once with `torch.fx` into a graph of calls. The
graph is taken only if every call keeps the workers apart on the grouped
layout, where the k workers' batches sit side by side as channels
([b, k C, H, W]): Conv2d, BatchNorm2d and Linear layers (replaced in the
traced copy by grouped ones reading the workers' stacked parameters), and
calls without parameters that act on each channel alone (activations,
pooling, dropout, sums of residual branches, flattening all but the batch
dimension, which puts each worker's C H W features in one block). A forward
that branches on the data cannot be traced, and a call outside that list (a
softmax or a concatenation over channels, a view, a parameter read
directly) could mix workers: such models are refused from their structure
alone, and the engine checks the traced pass against the model on its first
real inputs (`GroupedEngine.differs`) before it computes anything.

- a convolution is one grouped convolution (k times the layer's groups);
- a 2-D batch norm normalises each worker's channels over its own batch;
- a linear layer reads [b, ..., k F] as k workers' features and writes
  [b, ..., k O] (one matrix product over all samples when the workers share
  the weights, as in the sequential pass).
"""
from __future__ import annotations

import operator

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from simulator.core.engines.grouped_ops import SharedLinear, batch_norm
from simulator.core.engines.grouped_private import Tape

__all__ = ["GraphPass", "graph_unsupported"]

GROUPED = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)
PER_CHANNEL_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Identity,
                       nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout,
                       nn.Dropout2d, nn.Flatten)
PER_CHANNEL_FUNCTIONS = {operator.add, operator.iadd, operator.mul, torch.add, torch.mul, torch.relu, F.relu,
                         torch.flatten, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.dropout}
PER_CHANNEL_METHODS = {"add", "mul", "relu", "flatten"}


def _trace(module: nn.Module) -> torch.fx.GraphModule | str:
    try:
        return torch.fx.symbolic_trace(module)
    except Exception as error:  # noqa: BLE001 - any failure to trace means: no grouped graph
        return f"its forward cannot be traced ({type(error).__name__}; a branch on the data?)"


def _flattens_all_but_the_batch(node: torch.fx.Node, module: nn.Module | None) -> bool:
    if module is not None:
        return (module.start_dim, module.end_dim) == (1, -1)
    start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
    end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
    return (start, end) == (1, -1)


def graph_unsupported(module: nn.Module) -> str | None:
    """Why ``module``'s traced graph would mix workers on the grouped layout, or None (see the module docstring)."""
    traced = _trace(module)
    if isinstance(traced, str):
        return traced
    for node in traced.graph.nodes:
        layer = traced.get_submodule(node.target) if node.op == "call_module" else None
        if node.op == "call_module" and not isinstance(layer, GROUPED + PER_CHANNEL_MODULES):
            return f"this model has {type(layer).__name__}"
        if node.op == "call_function" and node.target not in PER_CHANNEL_FUNCTIONS:
            return f"its forward calls {getattr(node.target, '__name__', node.target)}"
        if node.op == "call_method" and node.target not in PER_CHANNEL_METHODS:
            return f"its forward calls .{node.target}()"
        if node.op == "get_attr":
            return f"its forward reads {node.target} directly"
        if isinstance(layer, nn.Conv2d) and layer.padding_mode != "zeros":
            return "this model has a non-zero-padded convolution"
        if isinstance(layer, nn.BatchNorm2d) and (layer.momentum is None or not layer.track_running_stats):
            return "this model's BatchNorm2d keeps a cumulative average or no running statistics"
        if isinstance(layer, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)) and layer.return_indices:
            return "this model's pooling returns indices"
        flattening = isinstance(layer, nn.Flatten) or node.target in (torch.flatten, "flatten")
        if flattening and not _flattens_all_but_the_batch(node, layer):
            return "this model flattens other dimensions than all but the batch's"
    return None


class GraphPass:
    """The traced graph of a model with its Conv2d, BatchNorm2d and Linear layers grouped."""

    def __init__(self, module: nn.Module, params: list[torch.Tensor]) -> None:
        owner = {id(p): i for i, p in enumerate(params)}
        self.graph = torch.fx.symbolic_trace(module)  # its own containers: the model's layers stay in place
        self.layers: list[_Grouped] = []
        for name, layer in list(self.graph.named_modules()):
            if isinstance(layer, GROUPED):
                grouped = _Grouped(layer, [owner[id(p)] for p in layer.parameters(recurse=False)],
                                   [f"{name}.{b}" for b, _ in layer.named_buffers(recurse=False)])
                parent, _, attribute = name.rpartition(".")
                setattr(self.graph.get_submodule(parent) if parent else self.graph, attribute, grouped)
                self.layers.append(grouped)

    def forward(self, stacked: list[torch.Tensor], inputs: torch.Tensor, shared: bool,
                copies: dict[str, torch.Tensor] | None, training: bool, tape: Tape | None = None) -> torch.Tensor:
        """Outputs [k, classes, b] of k workers (parameters stacked [k, ...]) on their batches [k, b, *shape];
        ``tape`` records the grouped layers for per-sample clipping."""
        k, b = inputs.shape[:2]
        for layer in self.layers:
            layer.bind(stacked, copies, k, shared, tape)
        self.graph.train(training)
        x = inputs.transpose(0, 1).reshape(b, k * inputs.shape[2], *inputs.shape[3:])
        if x.dim() == 4:  # channels-last, as in the sequential pass
            x = x.contiguous(memory_format=torch.channels_last)
        try:
            out = self.graph(x)
        finally:
            for layer in self.layers:
                layer.bind(None, None, 0, False)
        return out.reshape(b, k, -1).permute(1, 2, 0)


class _Grouped(nn.Module):
    """A Conv2d, BatchNorm2d or Linear of the model, run for k workers at once on the grouped layout."""

    def __init__(self, original: nn.Module, slots: list[int], buffer_names: list[str]) -> None:
        super().__init__()
        self.original = [original]  # in a list: not a submodule, the pass holds no parameters of its own
        self.slots, self.buffer_names = slots, buffer_names
        self.bind(None, None, 0, False)

    def bind(self, stacked: list[torch.Tensor] | None, copies: dict[str, torch.Tensor] | None, k: int,
             shared: bool, tape: Tape | None = None) -> None:
        """The workers' stacked parameters and buffer copies of the coming forward pass (None: forget them)."""
        self.own = [stacked[i] for i in self.slots] if stacked is not None else []
        self.copies = [copies[n] for n in self.buffer_names] if copies else None
        self.k, self.shared, self.tape = k, shared, tape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layer, k, own = self.original[0], self.k, self.own
        if isinstance(layer, nn.Conv2d):
            weight, bias = own[0], own[1] if len(own) > 1 else None
            z = F.conv2d(x, weight.reshape(-1, *weight.shape[2:]), None if bias is None else bias.reshape(-1),
                         layer.stride, layer.padding, layer.dilation, groups=k * layer.groups)
            return z if self.tape is None else self.tape.conv(layer, x, z, k, self.slots)
        if isinstance(layer, nn.BatchNorm2d):  # the original's mode is the engine module's: train or eval
            return batch_norm(layer, x, own, self.copies, k)
        weight, bias = own[0], own[1] if len(own) > 1 else None  # Linear: [..., k F] as k workers' features
        lead = x.shape[:-1]
        per_worker = x.reshape(-1, k, x.shape[-1] // k).transpose(0, 1)  # [k, N, F]
        if self.shared:
            per_worker = per_worker.contiguous()
            out = SharedLinear.apply(per_worker, weight, bias)
        else:
            out = torch.bmm(per_worker, weight.transpose(1, 2))
            out = out if bias is None else out + bias.unsqueeze(1)
        if self.tape is not None:  # [k, b T, F] -> [k, b T, O], T the positions of each sample
            out = self.tape.linear(per_worker, out, x.shape[0], True, self.slots)
        return out.transpose(0, 1).reshape(*lead, -1)
