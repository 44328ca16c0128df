"""A communication graph with Byzantine vertices: its mixing matrix and the facts a run reports.

Mixing weights are Metropolis-Hastings's, as in He, Karimireddy & Jaggi 2022
(arXiv 2202.01545; their code's ``metropolis_weight``): W_ij = 1 / (1 +
max(deg_i, deg_j)) on every edge, W_ii = 1 - sum_j W_ij, so W is symmetric and
doubly stochastic. The facts reported with a run (He et al. 2022, Section 3):

- the spectral gap gamma = 1 - |lambda_2(W~)|, the second largest eigenvalue in
  absolute value, where W~ is the honest nodes' block of W with each node's
  Byzantine weight moved onto its diagonal (their code's ``_get_w_tilde``): how
  fast plain gossip mixes among the honest nodes; with no Byzantine node it is
  the gap of W itself;
- delta_i = sum_b W_ib over node i's Byzantine neighbours b, and delta_max, its
  largest value over the honest nodes;
- whether the honest nodes' subgraph is connected (a run refuses one that is not:
  no gossip rule can bring its parts together).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["Graph", "adjacency", "metropolis"]


def adjacency(n: int, edges: list[tuple[int, int]]) -> torch.Tensor:
    """The symmetric boolean [n, n] adjacency of undirected ``edges`` (pairs of distinct vertices)."""
    out = torch.zeros(n, n, dtype=torch.bool)
    if edges:
        pairs = torch.tensor(edges, dtype=torch.long).reshape(-1, 2)
        out[pairs[:, 0], pairs[:, 1]] = True
        out[pairs[:, 1], pairs[:, 0]] = True
    out.fill_diagonal_(False)
    return out


def metropolis(adjacent: torch.Tensor) -> torch.Tensor:
    """Metropolis-Hastings weights [n, n] (float64) of a boolean adjacency: 1 / (1 + max degree) per edge."""
    degree = adjacent.sum(dim=1).double()
    weights = torch.where(adjacent, 1.0 / (1.0 + torch.maximum(degree[:, None], degree[None, :])), 0.0)
    return weights + torch.diag(1.0 - weights.sum(dim=1))


@dataclass(frozen=True)
class Graph:
    """An undirected graph of n nodes, which of them are Byzantine, and its mixing matrix (float64, CPU)."""

    adjacent: torch.Tensor  # bool [n, n], symmetric, no self loop
    byzantine: torch.Tensor  # bool [n]
    weights: torch.Tensor  # float64 [n, n], symmetric, rows summing to 1

    @classmethod
    def of(cls, adjacent: torch.Tensor, byzantine: torch.Tensor, weights: torch.Tensor | None = None) -> "Graph":
        """The graph with Metropolis weights unless ``weights`` are given."""
        return cls(adjacent, byzantine, metropolis(adjacent) if weights is None else weights)

    @property
    def n(self) -> int:
        return self.adjacent.shape[0]

    @cached_property
    def honest(self) -> torch.Tensor:
        """int64 [h]: the honest vertices, ascending (honest node k of a run is vertex honest[k])."""
        return (~self.byzantine).nonzero().flatten()

    @cached_property
    def byzantine_ids(self) -> torch.Tensor:
        """int64 [b]: the Byzantine vertices, ascending."""
        return self.byzantine.nonzero().flatten()

    @property
    def degree(self) -> torch.Tensor:
        return self.adjacent.sum(dim=1)

    @cached_property
    def byzantine_neighbours(self) -> torch.Tensor:
        """int64 [h]: how many Byzantine neighbours each honest node has (the f its rule is told)."""
        return self.adjacent[self.honest][:, self.byzantine].sum(dim=1)

    @cached_property
    def delta(self) -> torch.Tensor:
        """float64 [h]: each honest node's Byzantine weight delta_i = sum_b W_ib."""
        return self.weights[self.honest][:, self.byzantine].sum(dim=1)

    def w_tilde(self) -> torch.Tensor:
        """The honest block of W with each node's Byzantine weight added to its diagonal (He et al.'s W~)."""
        block = self.weights[self.honest][:, self.honest]
        return block + torch.diag(self.delta)

    @cached_property
    def spectral_gap(self) -> float:
        """1 - the second largest |eigenvalue| of W~ (1 for a single honest node)."""
        tilde = self.w_tilde()
        if tilde.shape[0] < 2:
            return 1.0
        values = torch.linalg.eigvalsh((tilde + tilde.T) / 2).abs().sort().values
        return float(1.0 - values[-2])

    @cached_property
    def honest_components(self) -> int:
        """The number of connected components of the honest nodes' subgraph."""
        block = self.adjacent[self.honest][:, self.honest].numpy()
        return int(connected_components(csr_matrix(block), directed=False)[0]) if block.size else 0

    def facts(self) -> dict:
        """What a run reports about its graph (summary.json, the report)."""
        honest_degree = self.degree[self.honest]
        count = self.byzantine_neighbours.double()
        share = torch.where(honest_degree > 0, count / honest_degree.clamp(min=1), 0.0)
        return {
            "nodes": self.n,
            "edges": int(self.adjacent.sum()) // 2,
            "byzantine_nodes": self.byzantine_ids.tolist(),
            "spectral_gap": round(self.spectral_gap, 8),
            "delta_max": round(float(self.delta.max()), 8) if len(self.delta) else 0.0,
            "max_byzantine_share": round(float(share.max()), 8) if len(share) else 0.0,
            "honest_connected": self.honest_components == 1,
            "degree": {"min": int(honest_degree.min()), "max": int(honest_degree.max())},
        }
