"""What the Byzantine nodes send each round: one vector per edge from a Byzantine node to an honest one, [E, d].

A Byzantine node may send each honest neighbour something else, aimed at it:

- ``dissensus`` (He et al. 2022): every Byzantine neighbour of node i sends
  x_i - epsilon sum_j w_ij (x_j - x_i) / sum_b w_ib, with the mixing weights
  under a gossip rule and equal weights under an aggregation rule (as the
  authors' code does), for all nodes at once;
- ``alie`` and ``ipm``: computed on each target's neighbourhood, its own model and
  its honest neighbours' (the authors' ``ALittleIsEnoughAttack`` and
  ``IPMAttack``), all targets at once in bounded chunks: the mean minus z times
  the coordinate-wise standard deviation, z from the target's neighbourhood
  (n_i = its degree + 1, f_i its Byzantine neighbours) unless given, or
  -epsilon times the mean;
- every other gradient attack: its ``byzantine(honest, f_i, ctx)`` once per
  target (a loop over the targets), on the target's own and honest neighbours'
  models, told n_i and f_i, the k-th Byzantine neighbour (in vertex order) sending
  row k; its context's aggregator is the target's own rule (for adaptive
  attacks' trials), and the Byzantine nodes' own vectors (``ctx.own()``, bit
  flipping) are their own models;
- a data attack (label flipping, ``none``, backdoors), and any attack on a round
  its schedule leaves out: each Byzantine node sends its own model, trained on
  its own (poisoned) batches (`simulator.core.decentralised.simulation`).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from attacks.base import Attack, AttackContext, DataAttack
from simulator.core.decentralised.gossip import weighted_sum
from simulator.core.decentralised.layout import Layout
from simulator.core.weak import weakly

__all__ = ["Messages", "NodeRule"]

CHUNK_ELEMENTS = 2**22  # values of the [targets, neighbours, d] neighbourhoods gathered at a time (16 MiB in float32)


class NodeRule:
    """One honest node's rule called as a server's rule is (rows, own model first, and f), for adaptive attacks."""

    def __init__(self, rule: object, weights: torch.Tensor | None) -> None:
        self.rule, self.weights = rule, weights  # weights [degree]: a gossip rule's; None: an aggregation rule

    def __call__(self, rows: torch.Tensor, f: int) -> torch.Tensor:
        if self.weights is None:
            return self.rule(rows, f)
        weights = self.weights if len(self.weights) == len(rows) - 1 else \
            torch.full((len(rows) - 1,), 1.0 / len(rows), dtype=rows.dtype, device=rows.device)
        return self.rule.one(rows, weights, f)

    def trial(self, rows: torch.Tensor, f: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.weights is None:
            return self.rule.trial(rows, f, generator)
        return self(rows, f)


class Messages:
    """The messages of one graph's Byzantine edges for the run's attack (see the module docstring)."""

    def __init__(self, attack: Attack, layout: Layout, weighted: bool, node_rule: Callable[[int], NodeRule],
                 generator: torch.Generator, num_classes: int | None) -> None:
        self.attack, self.layout, self.weighted = attack, layout, weighted
        self.node_rule = weakly(node_rule)  # the simulation's method: held weakly, no reference cycle
        self.generator, self.num_classes = generator, num_classes
        self.targets = (layout.f > 0).nonzero().flatten().tolist()

    def __call__(self, models: torch.Tensor, byzantine: torch.Tensor | None, step: int, lr: float) -> torch.Tensor:
        """[E, d]: models [h, d] the honest nodes' (after their local step), byzantine [b, d] the Byzantine nodes'
        own models (None when they keep none)."""
        layout, attack = self.layout, self.attack
        if not len(layout.target):
            return models.new_empty((0, models.shape[1]))
        if isinstance(attack, DataAttack) or not attack.attacks_at(step):
            return byzantine[layout.sender]
        batched = {"dissensus": self.dissensus, "alie": self.alie, "ipm": self.ipm}.get(attack.name)
        if batched is not None:
            return batched(models)[self.slot]
        return self.each_target(models, byzantine, step, lr)

    @property
    def slot(self) -> torch.Tensor:
        """int64 [E]: each message's target as a row of the per-target tensors (targets in node order)."""
        rank = torch.full((self.layout.h,), -1, dtype=torch.long, device=self.layout.target.device)
        rank[torch.tensor(self.targets, dtype=torch.long, device=rank.device)] = torch.arange(len(self.targets),
                                                                                             device=rank.device)
        return rank[self.layout.target]

    # -------------------------------------------------------------- batched
    def dissensus(self, models: torch.Tensor) -> torch.Tensor:
        """[t, d]: the dissensus vector aimed at each target."""
        layout = self.layout
        targets = torch.tensor(self.targets, dtype=torch.long, device=models.device)
        valid, byzantine = layout.valid[targets], layout.byzantine[targets]
        weight = layout.weight[targets] if self.weighted else valid.to(models.dtype)
        honest = weight * (valid & ~byzantine)
        index = torch.where(byzantine, 0, layout.index[targets])  # the messages' entries weigh nothing here
        own = models[targets]
        pull = weighted_sum(honest, index, models, models.shape[0]) - honest.sum(dim=1)[:, None] * own
        return own - self.attack.epsilon * pull / (weight * byzantine).sum(dim=1)[:, None]

    def _neighbourhoods(self, models: torch.Tensor):
        """Chunks of (nodes, honest rows [t, K, d], mask [t, K]): each target's own and honest neighbours' models, the
        targets in node order."""
        layout = self.layout
        honest = layout.valid & ~layout.byzantine
        rows = torch.cat([torch.arange(layout.h, device=models.device)[:, None], layout.index], dim=1)
        mask = torch.cat([torch.ones_like(honest[:, :1]), honest], dim=1)
        rows = torch.where(mask, rows, 0)  # the messages' and padding's rows point past the models
        targets = torch.tensor(self.targets, dtype=torch.long, device=models.device)
        width = mask.shape[1]
        step = max(1, CHUNK_ELEMENTS // (width * max(models.shape[1], 1)))
        for start in range(0, len(targets), step):
            nodes = targets[start:start + step]
            part = mask[nodes]
            yield nodes, models[rows[nodes]] * part[:, :, None], part

    def _mean(self, block: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return block.sum(dim=1) / mask.sum(dim=1, keepdim=True).to(block.dtype)

    def ipm(self, models: torch.Tensor) -> torch.Tensor:
        return torch.cat([-self.attack.epsilon * self._mean(block, mask)
                          for _, block, mask in self._neighbourhoods(models)])

    def alie(self, models: torch.Tensor) -> torch.Tensor:
        layout, out = self.layout, []
        z = {}
        for nodes, block, mask in self._neighbourhoods(models):
            count = mask.sum(dim=1)
            mean = self._mean(block, mask)
            deviation = (block - mean[:, None]) * mask[:, :, None]
            std = (deviation.square().sum(dim=1) / (count - 1).clamp(min=1)[:, None].to(models.dtype)).sqrt()
            scale = torch.tensor([self._z(z, int(layout.size[i]), int(layout.f[i])) for i in nodes.tolist()],
                                 dtype=models.dtype, device=models.device)
            out.append(mean - scale[:, None] * std)
        return torch.cat(out)

    def _z(self, cache: dict, n: int, f: int) -> float:
        """ALIE's z for a neighbourhood of n with f Byzantine (once per distinct pair)."""
        if (n, f) not in cache:
            cache[n, f] = self.attack.scale(f, AttackContext(nb_workers=n, decl_f=f, aggregator=None, generator=None))
        return cache[n, f]

    # -------------------------------------------------------------- generic
    def each_target(self, models: torch.Tensor, byzantine: torch.Tensor | None, step: int, lr: float) -> torch.Tensor:
        """Any gradient attack, once per target, on the target's neighbourhood."""
        layout = self.layout
        out = torch.empty(len(layout.target), models.shape[1], dtype=models.dtype, device=models.device)
        for node in self.targets:
            entries = layout.index[node][layout.valid[node] & ~layout.byzantine[node]]
            honest = models[torch.cat([torch.tensor([node], device=models.device), entries])]
            mine = (layout.target == node).nonzero().flatten()
            f = len(mine)
            out[mine] = self.attack.byzantine(honest, f, self.context(node, mine, byzantine, step, lr))
        return out

    def context(self, node: int, mine: torch.Tensor, byzantine: torch.Tensor | None, step: int,
                lr: float) -> AttackContext:
        """What the attack on ``node`` is told: its neighbourhood's size and f, its rule, the senders' own models."""
        senders = self.layout.sender[mine]

        def vectors(poison, momentum) -> torch.Tensor:
            if byzantine is None:
                raise ValueError("The Byzantine nodes keep no models of their own in this run.")
            return byzantine[senders]

        return AttackContext(nb_workers=int(self.layout.size[node]), decl_f=len(mine), aggregator=self.node_rule()(node),
                             generator=self.generator, num_classes=self.num_classes, vectors=vectors, step=step,
                             server_lr=lr)
