"""FLAME (Nguyen et al., USENIX Security 2022, "FLAME: Taming backdoors in federated learning").

Three stages each round:

1. Filtering: HDBSCAN on the pairwise cosine distances 1 - cos(x_i, x_j) with
   min_cluster_size = floor(n/2) + 1 and min_samples = 1 (single-cluster
   output allowed), so at most one cluster forms, of a majority of the
   vectors; it is admitted, the others are outliers.
2. Adaptive clipping: S = the median of all n norms; each admitted vector is
   scaled by min(1, S / |x_i|) and the output is their mean.
3. Noise: N(0, (noise S)^2) per coordinate, drawn from the rule's generator;
   ``noise`` is the paper's lambda, by default its value for image
   classification, 0.001. The paper adds the noise to the aggregated model;
   byzsim adds it to the aggregate, the same thing in a federated round whose
   server takes the aggregate as it is (``server_opt = "sgd(lr=1)"``), scaled
   by the server's lr otherwise.

The paper clusters the local models; a rule here sees the updates, whose
cosines the global model (common to every local model) does not dominate.
When no cluster forms (fewer than floor(n/2) + 1 finite vectors; HDBSCAN,
allowed a single cluster, otherwise always forms one), nothing is admitted
and the output is the noise alone.
Non-finite vectors (and finite ones whose norm overflows) are outliers; their
norm counts in the median as +inf. Randomised (the noise). Requires
n >= 2f + 1: the majority cluster is taken to be honest.
"""
from __future__ import annotations

import math

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances, squared_distances_to, weighted_mean
from aggregators.rules.clippedclustering import cosine_distances
from aggregators.rules.signguard import median_of


@register("flame")
class Flame(Rule):
    """HDBSCAN majority cluster on cosine distances, clipped to the median norm, plus Gaussian noise (Nguyen et al. 2022)."""

    randomised = True
    noise: float = 0.001
    bound = (2, 1)

    def validate(self) -> None:
        self.need(0 <= self.noise < math.inf, "a finite noise >= 0")

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        squares = squared_distances_to(gradients)
        norms = squares.sqrt()
        good = torch.isfinite(norms)
        admitted = majority_cluster(cosine_distances(squared_distances(gradients), squares), good)
        bound = median_of(norms)
        scale = torch.where(norms > bound, bound / norms, 1.0)
        out = weighted_mean(torch.where(admitted, scale, 0.0) / admitted.sum().clamp(min=1), gradients, admitted)
        if self.noise == 0:
            return out
        return out + self.gaussian(self.noise * float(bound), out)


def majority_cluster(distance: torch.Tensor, good: torch.Tensor) -> torch.Tensor:
    """Boolean [n]: the ``good`` rows of HDBSCAN's largest cluster with min_cluster_size floor(n/2) + 1.

    One call to scikit-learn's HDBSCAN on the precomputed [m, m] distances of the m good rows
    (min_samples = 1, a single cluster allowed); none when fewer than floor(n/2) + 1 rows are good.
    """
    n = good.numel()
    index = good.nonzero().flatten()
    size = n // 2 + 1
    out = torch.zeros_like(good)
    if index.numel() < size:
        return out
    if size == 1:  # n = 1: HDBSCAN takes clusters of two or more
        out[index] = True
        return out
    from sklearn.cluster import HDBSCAN  # lazy: start-up time (scikit-learn's clustering takes a second to import)
    block = distance[index[:, None], index[None, :]].cpu().numpy()
    labels = torch.from_numpy(HDBSCAN(min_cluster_size=size, min_samples=1, metric="precomputed",
                                      allow_single_cluster=True, copy=True).fit(block).labels_).to(good.device)
    if not bool((labels >= 0).any()):
        return out
    largest = torch.bincount(labels[labels >= 0]).argmax()
    out[index[labels == largest]] = True
    return out
