"""FoolsGold (Fung, Yoon & Beschastnikh, RAID 2020, "The limitations of federated learning in sybil settings").

Sybils pursuing one goal send similar updates round after round; FoolsGold
lowers the weight of clients whose accumulated updates look alike. The rule
keeps each client's history H_c, the sum of every vector it has sent (its
state, indexed by the senders' identities: it needs them, ``RoundInfo.clients``).
Each round, for the senders i, j of the round:

- cs_ij = cos(H_i, H_j) - [i = j], and v_i = max_j cs_ij;
- pardoning: cs_ij <- cs_ij v_i / v_j where v_i < v_j (an honest client
  that merely resembles a sybil keeps its weight);
- a_i = 1 - max_j cs_ij, clipped to [0, 1], divided by the largest a
  (all 0 if every a is 0), a value of 1 set to 0.99;
- the logit with confidence kappa: a_i <- kappa (ln(a_i / (1 - a_i)) + 0.5),
  clipped to [0, 1] (ln 0 gives 0);
- output: (1/n) sum_i a_i x_i, the round's vectors weighted.

kappa = 1 and the constants 0.99 and 0.5 are the authors' code
(``foolsgold`` in DistributedML/FoolsGold); the (1/n) sum is their deep
learning trainer's (``deep-fg/fg/trainer.py``), so that weights of 1 give
the mean. Differences: the cosines use the whole vectors (that trainer used
the output layer's weights, a layer a flat vector does not expose), and the
paper's optional feature-importance weighting is left out. A non-finite
vector gets weight 0 and is not added to its sender's history. No
requirement on (n, f): the paper bounds no number of sybils.
"""
from __future__ import annotations

import math

import torch

from aggregators.base import Rule, register
from aggregators.distances import finite_rows, squared_distances, squared_distances_to, weighted_mean
from aggregators.rules.clippedclustering import cosine_distances
from experiments.tools import UserException


@register("foolsgold")
class FoolsGold(Rule):
    """Down-weight clients whose accumulated updates are alike (sybils), by identity across rounds (Fung et al. 2020)."""

    kappa: float = 1.0
    needs = frozenset({"clients"})
    state_keys = ("history",)  # [N, d]: row c the sum of client c's vectors so far (None at first)

    def validate(self) -> None:
        self.need(0 < self.kappa < math.inf, "a finite kappa > 0")

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n, d = gradients.shape
        clients = self.info.clients.to(device=gradients.device, dtype=torch.int64)
        good = finite_rows(gradients)
        history = self._grown(int(clients.max()) + 1, d, gradients)
        history = history.index_add(0, clients[good], gradients[good])  # a new tensor: state is never mutated
        self.history = history
        weights = torch.where(good, foolsgold_weights(history[clients], self.kappa), 0.0)
        return weighted_mean(weights / n, gradients, good)

    def _grown(self, rows: int, d: int, like: torch.Tensor) -> torch.Tensor:
        """The history on ``like``'s device and dtype, with at least ``rows`` rows (new clients start at zero)."""
        history = self.history
        if history is None:
            return like.new_zeros(rows, d)
        if history.shape[1] != d:
            raise UserException(f"foolsgold's history has {history.shape[1]} coordinates but the gradients have "
                                f"{d}; call reset() when the model changes.")
        history = history.to(device=like.device, dtype=like.dtype)
        if history.shape[0] < rows:
            history = torch.cat([history, like.new_zeros(rows - history.shape[0], d)])
        return history


def foolsgold_weights(history: torch.Tensor, kappa: float) -> torch.Tensor:
    """Float64 [n] FoolsGold weights of the senders whose histories are the rows of ``history``."""
    n = history.shape[0]
    # cos(H_i, H_j) - [i = j]; a zero history has cosine 0 with every other (and its own term is then 0, not the
    # authors' -1: either way its largest similarity is the 0 of the others, the weights agree)
    similarity = -cosine_distances(squared_distances(history), squared_distances_to(history))
    similarity += 1 - torch.eye(n, dtype=torch.float64, device=history.device)
    most = similarity.max(dim=1).values
    pardoned = most[:, None] < most[None, :]  # v_i < v_j
    similarity = torch.where(pardoned, similarity * most[:, None] / most[None, :], similarity)
    weights = (1 - similarity.max(dim=1).values).clamp(0.0, 1.0)
    top = weights.max()
    weights = weights / top if bool(top > 0) else torch.zeros_like(weights)
    weights = torch.where(weights == 1, 0.99, weights)
    logit = kappa * (torch.log(weights / (1 - weights)) + 0.5)
    return logit.nan_to_num(nan=0.0).clamp(0.0, 1.0)
