"""Any aggregation rule applied at every honest node to its own model and its neighbours', told its local f.

Node i's rule gets the rows [x_i, its honest neighbours' models (vertex order),
its Byzantine neighbours' messages (vertex order)]: honest first, Byzantine
last, as a server's rule gets them, with f_i, the number of its Byzantine
neighbours. Its output is the node's new model. The rule ignores the mixing
weights: He et al. 2022's code applies its decentralised median, trimmed mean,
Krum and RFA the same way, to the node's input and its neighbours'
(``DeCM``, ``DeTM``, ``DeKrum``, ``DeRFA``).

Batched over nodes: a coordinate-wise rule (average, median, trmean, meamed,
phocas) computes each coordinate from its own column, so the nodes of one
neighbourhood size and one f are laid side by side as columns and go through one
call, a bounded chunk of them at a time: the same numbers as one call per node.
Any other rule or chain (Krum, geometric median, nnm>...) needs whole rows and
runs once per node: a loop over the nodes, whose cost ``benchmarks/decentralised.py``
measures. A rule that keeps state (cclip's centre) or draws randomness keeps one
copy per node, its randomness from a stream of the node's own.
"""
from __future__ import annotations

import copy

import torch

import aggregators
from aggregators.base import Rule
from simulator.core.decentralised.layout import Layout
from simulator.core.seeding import generator

__all__ = ["COORDINATEWISE", "NeighbourhoodRule"]

COORDINATEWISE = frozenset({"average", "median", "trmean", "meamed", "phocas"})  # each column on its own
CHUNK_ELEMENTS = 2**22  # values of the [nodes, size, d] neighbourhoods gathered at a time (16 MiB in float32)


class NeighbourhoodRule:
    """The run's aggregation rule at every honest node (see the module docstring)."""

    def __init__(self, rule: Rule, layout: Layout, honest_vertices: list[int], seed: int) -> None:
        self.rule = rule
        own_state = any(step.state_keys or step.randomised for step in rule.parts())
        self.copies = [aggregators.get(rule.spec, generator=generator(seed, f"aggregator node {v}"))
                       if rule.generators() else copy.deepcopy(rule) for v in honest_vertices] if own_state else None
        self.columns = not own_state and rule.parts() == [rule] and rule.name in COORDINATEWISE
        self.relayout(layout)

    def relayout(self, layout: Layout) -> None:
        """Group the nodes of a (new) graph by neighbourhood size and f; the nodes' rules keep their state."""
        self.layout = layout
        keys = torch.stack([layout.size, layout.f], dim=1).cpu()
        self.groups = [(int(size), int(f), (keys == torch.tensor([size, f])).all(dim=1).nonzero().flatten())
                       for size, f in keys.unique(dim=0).tolist()]

    def __call__(self, models: torch.Tensor, messages: torch.Tensor, layout: Layout) -> torch.Tensor:
        """The honest nodes' new models [h, d]."""
        sources = torch.cat([models, messages])
        out = torch.empty_like(models)
        d = models.shape[1]
        for size, f, nodes in self.groups:
            nodes = nodes.to(models.device)
            rows = torch.cat([nodes[:, None], layout.index[nodes, :size - 1]], dim=1)  # [g, size]
            if self.columns:
                step = max(1, CHUNK_ELEMENTS // (size * max(d, 1)))
                for start in range(0, len(nodes), step):
                    part = rows[start:start + step]
                    block = sources[part].transpose(0, 1).reshape(size, -1)  # node after node along the columns
                    out[nodes[start:start + step]] = self.rule(block, f).reshape(len(part), d)
            else:
                for node, row in zip(nodes.tolist(), rows):
                    out[node] = self.rule_of(node)(sources[row], f)
        return out

    def rule_of(self, node: int) -> Rule:
        """Honest node ``node``'s rule: its own copy for rules with state, else the run's."""
        return self.rule if self.copies is None else self.copies[node]

    def state_dict(self) -> dict:
        return {"nodes": [r.state_dict() for r in self.copies]} if self.copies is not None else \
            {"rule": self.rule.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.copies is None:
            self.rule.load_state_dict(state["rule"])
        else:
            for rule, own in zip(self.copies, state["nodes"]):
                rule.load_state_dict(own)
