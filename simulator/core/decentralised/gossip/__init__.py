"""Gossip rules: how an honest node combines its model with what its neighbours send.

A decentralised run names its rule with ``aggregator``, as a server run does:
either a gossip rule of this registry (``gossip``, ``clippedgossip``,
``csplus``), which weighs each neighbour by the mixing matrix, or any
aggregation rule or chain (``median``, ``nnm>krum``), applied at each node to
its own model and its neighbours' (`simulator.core.decentralised.neighbourhood`).
A gossip rule named in a run without a topology is refused in one line.

The gossip rules here are all of one form, the robust gossip of Gaucher,
Dieuleveut & Hendrikx 2025 ("Unified Breakdown Analysis for Byzantine Robust
Gossip", arXiv 2410.10418, their F-RG framework): node i moves to

    x_i + eta * sum_j W_ij * clip(x_j - x_i, tau_i)

over its neighbours j, clip(v, tau) = v * min(1, tau / |v|), each rule choosing
its radius tau_i (infinite: plain gossip, sum_j W_ij x_j with the self weight).
All nodes at once: the distances of every received vector to the receiver's
model (exact differences, in chunks of a bounded size), the radii from them,
then one dense or sparse product of the clipped weights with the stacked
models and messages. Under a finite radius, a message with a non-finite norm
is clipped to nothing; an infinite radius (plain gossip) takes it as it is.

A new rule is one module in this package: a `GossipRule` subclass decorated
with ``@register("name")``, with ``radii(distances, layout)``.
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch

from experiments.grammar import parse_spec
from experiments.plugin import Plugin
from experiments.registry import Registry
from experiments.tools import UserException
from simulator.core.decentralised.layout import Layout

__all__ = ["GOSSIP", "GossipRule", "gossip_rule", "register", "entry_distances", "weighted_sum"]

CHUNK_ELEMENTS = 2**18  # values of the [pairs, d] differences formed at a time (in cache) when measuring distances


class GossipRule(Plugin):
    """x_i + eta sum_j W_ij clip(x_j - x_i, tau_i): subclasses choose the radius."""

    family = "gossip rule"

    @property
    def step(self) -> float:
        """eta, the step towards the clipped neighbours: 1 (CS+ takes it as a parameter)."""
        return 1.0

    clips: ClassVar[bool] = True  # whether the rule clips at all (plain gossip measures no distance)

    def radii(self, distances: torch.Tensor, layout: Layout) -> torch.Tensor:
        """[h]: each node's clipping radius from its entries' distances [h, D] (inf on padding); inf: no clipping."""
        raise NotImplementedError

    def __call__(self, models: torch.Tensor, messages: torch.Tensor, layout: Layout) -> torch.Tensor:
        """The honest nodes' new models [h, d] from their models [h, d] and the Byzantine messages [E, d]."""
        sources = torch.cat([models, messages])
        if not self.clips:
            return self._move(models, sources, layout.weight, layout)
        distances = entry_distances(sources, models, layout)
        tau = self.radii(distances, layout)
        scale = torch.where(distances > 0, tau[:, None] / distances, 1.0).clamp(max=1.0)
        scale = torch.where(torch.isfinite(distances), scale.nan_to_num(nan=0.0), 0.0)  # clipped to nothing
        scale = torch.where(layout.valid, torch.where(torch.isinf(tau)[:, None], 1.0, scale), 0.0)  # inf: no clip
        coefficient = layout.weight * scale
        used = torch.zeros(sources.shape[0], dtype=torch.bool, device=sources.device)
        used[layout.index[coefficient > 0]] = True
        sources = torch.where(used[:, None], sources, 0.0)  # what is clipped to nothing may hold NaN or inf
        return self._move(models, sources, coefficient, layout)

    def _move(self, models: torch.Tensor, sources: torch.Tensor, coefficient: torch.Tensor,
              layout: Layout) -> torch.Tensor:
        """x_i + eta sum_e c_e (s_e - x_i) as one product: the entries weighted eta c_e, the node itself
        1 - eta sum_e c_e."""
        own = 1 - self.step * coefficient.sum(dim=1)
        return _product(self.step * coefficient, layout.index, sources, layout.h, own)

    def one(self, rows: torch.Tensor, weights: torch.Tensor, f: int) -> torch.Tensor:
        """The rule at one node: its model ``rows[0]``, its neighbours' vectors ``rows[1:]`` with ``weights``, the last
        ``f`` of them Byzantine (what an adaptive attack's trials call)."""
        layout = Layout.single(weights.to(rows.dtype), f)
        return self(rows[:1], rows[1:], layout)[0]

    # As the configuration's aggregator, a gossip rule is refused outside a decentralised run.
    def unmet(self, n: int, f: int) -> str | None:
        return "a topology (it is a gossip rule of decentralised runs)"

    def check(self, n: int, f: int) -> None:
        raise UserException(f"{self.spec} is a gossip rule of decentralised runs: give a topology "
                            f"(e.g. --topology ring), or use an aggregation rule.")

    def needed(self) -> frozenset[str]:
        return frozenset()

    def root_set_size(self) -> int:
        return 0


def entry_distances(sources: torch.Tensor, models: torch.Tensor, layout: Layout) -> torch.Tensor:
    """[h, D]: |sources[index] - models[node]| for every entry (inf on padding), from exact differences (no
    |a|^2 + |b|^2 - 2ab, which cancels when the models nearly agree), each pair of honest neighbours once, a
    chunk of pairs small enough to stay in cache at a time."""
    node, slot = layout.valid.nonzero(as_tuple=True)
    rows = layout.index[node, slot]
    first = (rows >= layout.h) | (node < rows)  # a message, or the first of an honest pair's two entries: measured
    measured = torch.zeros(len(node), dtype=models.dtype, device=models.device)
    mine = first.nonzero().flatten()
    step = max(1, CHUNK_ELEMENTS // max(models.shape[1], 1))
    for start in range(0, len(mine), step):
        part = mine[start:start + step]
        measured[part] = (sources[rows[part]] - models[node[part]]).norm(dim=1)
    pair = torch.zeros(layout.h, layout.h, dtype=models.dtype, device=models.device)
    honest = first & (rows < layout.h)
    pair[node[honest], rows[honest]] = measured[honest]
    second = (rows < layout.h) & ~first
    measured[second] = pair[rows[second], node[second]]
    out = torch.full(layout.index.shape, math.inf, dtype=models.dtype, device=models.device)
    out[node, slot] = measured
    return out


def _product(coefficient: torch.Tensor, index: torch.Tensor, sources: torch.Tensor, trusted: int = 0,
             own: torch.Tensor | None = None) -> torch.Tensor:
    """sum over entries of coefficient * sources[index] per node (plus ``own`` [h] times the node's own row
    sources[node], when given): one dense product for dense graphs, else one sparse product.

    A source row after the first ``trusted`` (the honest models) holding NaN or inf is left out of the product
    (0 * inf would reach every node) and added to its own receivers alone.
    """
    broken = torch.zeros(sources.shape[0], dtype=torch.bool, device=sources.device)
    broken[trusted:] = ~torch.isfinite(sources[trusted:]).all(dim=1)
    if bool(broken.any()):
        out = _product(coefficient, index, torch.where(broken[:, None], 0.0, sources), sources.shape[0], own)
        node, slot = (broken[index] & (coefficient != 0)).nonzero(as_tuple=True)
        return out.index_add_(0, node, coefficient[node, slot, None].to(sources.dtype) * sources[index[node, slot]])
    h, k = coefficient.shape[0], sources.shape[0]
    if own is not None:  # the node's own row as one more entry
        nodes = torch.arange(h, device=index.device)
        coefficient, index = torch.cat([own[:, None], coefficient], dim=1), torch.cat([nodes[:, None], index], dim=1)
    nonzero = coefficient != 0
    if nonzero.sum() * 4 >= h * k:
        dense = torch.zeros(h, k, dtype=sources.dtype, device=sources.device)
        dense.scatter_add_(1, index, coefficient.to(sources.dtype))
        return dense @ sources
    node, slot = nonzero.nonzero(as_tuple=True)
    sparse = torch.sparse_coo_tensor(torch.stack([node, index[node, slot]]), coefficient[node, slot].to(sources.dtype),
                                     (h, k), check_invariants=False).coalesce()
    return torch.sparse.mm(sparse, sources)


weighted_sum = _product  # the messages' dissensus sums its targets' honest neighbours the same way

GOSSIP: Registry[type[GossipRule]] = Registry("gossip rule", packages=("simulator.core.decentralised.gossip",))
register = GOSSIP.register


def gossip_rule(spec: str) -> GossipRule | None:
    """The gossip rule ``spec`` names (one step, a name of this registry), else None."""
    steps = parse_spec(spec, "aggregator", chain=True)
    if len(steps) != 1 or steps[0][0] not in GOSSIP:
        return None
    name, params = steps[0]
    return GOSSIP.get(name)(**params)
