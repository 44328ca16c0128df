"""What each honest node receives in a gossip step, laid out as tensors once per graph.

Every honest node k (vertex ``graph.honest[k]``) receives one vector per
neighbour: its honest neighbours' models and one message per Byzantine
neighbour. A round stacks them as ``sources = cat(models [h, d], messages
[E, d])`` and each node's entries are rows of it: ``index [h, D]`` (D the
largest degree), honest neighbours first in vertex order, then the messages of
its Byzantine neighbours in vertex order, then padding (``valid`` false,
weight 0). The messages are ordered by target, then sender: message e goes to
node ``target[e]`` from Byzantine node ``sender[e]`` with weight
``message_weight[e]``. Weights are the mixing matrix's (`simulator.core.
decentralised.graph`); a rule that ignores them (an aggregation rule applied to
the neighbourhood) reads ``index`` and ``size`` only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from simulator.core.decentralised.graph import Graph

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    """The honest nodes' neighbourhoods of one graph (see the module docstring); tensors on the run's device."""

    index: torch.Tensor  # int64 [h, D]: rows of cat(models, messages), padding 0
    weight: torch.Tensor  # [h, D] mixing weights, padding 0
    valid: torch.Tensor  # bool [h, D]
    byzantine: torch.Tensor  # bool [h, D]: the entry is a Byzantine neighbour's message
    self_weight: torch.Tensor  # [h]: W_ii
    f: torch.Tensor  # int64 [h]: Byzantine neighbours
    target: torch.Tensor  # int64 [E]: the honest node each message goes to
    sender: torch.Tensor  # int64 [E]: the Byzantine node (0..b-1, in vertex order) that sends it
    message_weight: torch.Tensor  # [E]

    @property
    def h(self) -> int:
        return self.index.shape[0]

    @property
    def size(self) -> torch.Tensor:
        """int64 [h]: each node's neighbourhood with itself, degree + 1."""
        return self.valid.sum(dim=1) + 1

    @property
    def delta(self) -> torch.Tensor:
        """[h]: each node's Byzantine weight, the sum of its Byzantine neighbours' weights."""
        return (self.weight * self.byzantine).sum(dim=1)

    @classmethod
    def of(cls, graph: Graph, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> "Layout":
        """The layout of ``graph``'s honest nodes."""
        h = len(graph.honest)
        local = torch.full((graph.n,), -1, dtype=torch.long)
        local[graph.honest] = torch.arange(h)
        byz_local = torch.full((graph.n,), -1, dtype=torch.long)
        byz_local[graph.byzantine_ids] = torch.arange(len(graph.byzantine_ids))
        rows = graph.adjacent[graph.honest]  # [h, n]
        honest_part = rows & ~graph.byzantine
        byz_part = rows & graph.byzantine
        targets, senders = byz_part.nonzero(as_tuple=True)  # row-major: by target, then sender vertex
        width = max(int(rows.sum(dim=1).max()) if h else 0, 1)
        index = torch.zeros(h, width, dtype=torch.long)
        weight = torch.zeros(h, width, dtype=torch.float64)
        byzantine = torch.zeros(h, width, dtype=torch.bool)
        count = torch.zeros(h, dtype=torch.long)
        first_message = torch.zeros(h, dtype=torch.long)
        for k in range(h):  # once per graph: the tables themselves
            honest_nbrs = honest_part[k].nonzero().flatten()
            messages = (targets == k).nonzero().flatten()
            entries = torch.cat([local[honest_nbrs], h + messages])
            index[k, :len(entries)] = entries
            vertex = graph.honest[k]
            weight[k, :len(entries)] = torch.cat([graph.weights[vertex, honest_nbrs],
                                                  graph.weights[vertex, senders[messages]]])
            byzantine[k, len(honest_nbrs):len(entries)] = True
            count[k], first_message[k] = len(entries), len(honest_nbrs)
        valid = torch.arange(width)[None, :] < count[:, None]
        move = dict(device=device)
        return cls(index=index.to(**move), weight=weight.to(device=device, dtype=dtype), valid=valid.to(**move),
                   byzantine=byzantine.to(**move),
                   self_weight=graph.weights[graph.honest, graph.honest].to(device=device, dtype=dtype),
                   f=graph.byzantine_neighbours.to(**move), target=targets.to(**move),
                   sender=byz_local[senders].to(**move),
                   message_weight=graph.weights[graph.honest[targets], senders].to(device=device, dtype=dtype))

    @classmethod
    def single(cls, weights: torch.Tensor, f: int) -> "Layout":
        """One node whose k neighbours all arrive as messages (the last ``f`` of them Byzantine), with ``weights``
        [k] and self weight 1 - their sum: how a gossip rule treats one neighbourhood given as rows."""
        k = weights.shape[0]
        width = max(k, 1)
        index = torch.zeros(1, width, dtype=torch.long, device=weights.device)
        index[0, :k] = torch.arange(1, k + 1, device=weights.device)
        weight = torch.zeros(1, width, dtype=weights.dtype, device=weights.device)
        weight[0, :k] = weights
        valid = (torch.arange(width, device=weights.device) < k)[None]
        byzantine = valid & (torch.arange(width, device=weights.device) >= k - f)[None]
        return cls(index=index, weight=weight, valid=valid, byzantine=byzantine,
                   self_weight=(1 - weights.sum()).reshape(1),
                   f=torch.tensor([f], device=weights.device), target=torch.zeros(k, dtype=torch.long,
                                                                                  device=weights.device),
                   sender=torch.arange(k, device=weights.device), message_weight=weights)
