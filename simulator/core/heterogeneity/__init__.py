"""Data heterogeneity: split a training set's indices among the workers.

Each mode is a registered `Heterogeneity` plug-in, named by a spec
(``dirichlet(alpha=0.3)``): its ``split`` maps the labels, the number of workers
and an explicit `torch.Generator` to one int64 index tensor per worker
(indices into the training set, on the CPU). Modes:

- ``iid``: a random permutation cut into equal shares.
- ``dirichlet(alpha=1.0)``: for every class, the proportions of its samples
  given to the workers are drawn from Dir(alpha, ..., alpha) (Hsu, Qi and
  Brown, "Measuring the effects of non-identical data distribution for
  federated visual classification", 2019). Small alpha: few classes per
  worker; large alpha: close to iid.
- ``extreme``: the samples sorted by label, cut into contiguous shards, so that
  with at least as many workers as classes each worker sees one or two classes.
- ``gamma(iid_fraction=0.5)``: ByzFL's gamma-similarity
  (``gamma_similarity_niid`` in ByzFL's ``DataDistributor``,
  github.com/LPD-EPFL/byzfl, ``byzfl/fed_framework/data_distributor.py``): a
  fraction gamma of the samples is split iid, the remaining samples are sorted
  by label and split into contiguous shards, and worker i gets the i-th share of
  both. 1 is iid, 0 is ``extreme``.
- ``groups(k=2)`` (`groups`): the classes and the workers each cut into k
  contiguous groups, every group of workers sharing its group of classes iid
  (He, Karimireddy & Jaggi 2022's dumbbell split).

Every worker must receive at least one sample; otherwise `UserException`.
A new mode is one module in this package: a `Heterogeneity` subclass decorated
with ``@register("name")``, its parameters as annotated attributes.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from experiments.plugin import Plugin
from experiments.registry import Registry
from experiments.tools import UserException

__all__ = ["Heterogeneity", "MODES", "register", "partition"]

_DIRICHLET_DRAWS = 100  # redraws of the proportions before giving up on empty workers


class Heterogeneity(Plugin):
    """A data split among the honest workers: ``split(labels, n, generator)`` -> n index tensors."""

    family = "heterogeneity"

    def split(self, labels: torch.Tensor, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        raise NotImplementedError


MODES: Registry[type[Heterogeneity]] = Registry("heterogeneity", packages=("simulator.core.heterogeneity",))
register = MODES.register


def partition(targets: torch.Tensor, nb_workers: int, mode: Heterogeneity, generator: torch.Generator
              ) -> list[torch.Tensor]:
    """Split the indices of a labelled training set among `nb_workers` workers by ``mode``.

    Returns one non-empty int64 CPU tensor of indices per worker, disjoint, covering the set;
    `generator` (a CPU `torch.Generator`) is the only source of randomness.
    """
    if not isinstance(targets, torch.Tensor) or targets.dim() != 1 or targets.dtype.is_floating_point:
        raise UserException("Partitioning needs the training labels as a 1-D integer tensor.")
    labels = targets.detach().to("cpu", torch.int64)
    if labels.numel() > 0 and labels.min() < 0:
        raise UserException("Partitioning needs non-negative class labels.")
    if isinstance(nb_workers, bool) or not isinstance(nb_workers, int) or nb_workers < 1:
        raise UserException(f"The number of workers must be a positive integer, got {nb_workers!r}.")
    if labels.numel() < nb_workers:
        raise UserException(
            f"Cannot give each of {nb_workers} workers a sample of a training set of {labels.numel()} samples.")
    parts = mode.split(labels, nb_workers, generator)
    empty = sum(len(p) == 0 for p in parts)
    if empty:
        raise UserException(
            f"Heterogeneity {mode.spec!r} left {empty} of {nb_workers} workers without any "
            f"sample; use fewer workers or a milder setting.")
    return parts


def _label_sorted(indices: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The given indices (already in random order) stably sorted by their label."""
    return indices[torch.sort(labels[indices], stable=True).indices]


@register("iid")
class Iid(Heterogeneity):
    """random equal split: every worker draws from the same distribution"""

    def split(self, labels: torch.Tensor, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        return list(torch.tensor_split(torch.randperm(labels.numel(), generator=generator), n))


@register("extreme")
class Extreme(Heterogeneity):
    """label-sorted contiguous shards: each worker sees one or two classes (n >= classes)"""

    def split(self, labels: torch.Tensor, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        perm = torch.randperm(labels.numel(), generator=generator)
        return list(torch.tensor_split(_label_sorted(perm, labels), n))


@register("gamma")
class Gamma(Heterogeneity):
    """ByzFL gamma-similarity: a fraction iid_fraction split iid, the rest label-sorted"""

    iid_fraction: float = 0.5

    def validate(self) -> None:
        self.need(0 <= self.iid_fraction <= 1, "iid_fraction in [0, 1]")

    def split(self, labels: torch.Tensor, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        perm = torch.randperm(labels.numel(), generator=generator)
        cut = int(self.iid_fraction * labels.numel())
        similar = torch.tensor_split(perm[:cut], n)
        # the sorted shards make up the difference, so every worker ends with N/n samples (+-1)
        rest_sizes = [len(share) - len(part) for share, part in zip(torch.tensor_split(perm, n), similar)]
        sorted_rest = torch.split(_label_sorted(perm[cut:], labels), rest_sizes)
        return [torch.cat(pair) for pair in zip(similar, sorted_rest)]


@register("dirichlet")
class Dirichlet(Heterogeneity):
    """per-class proportions ~ Dir(alpha) (Hsu et al. 2019); small alpha = skewed"""

    alpha: float = 1.0

    def validate(self) -> None:
        self.need(0 < self.alpha < math.inf, "a finite alpha > 0")

    def split(self, labels: torch.Tensor, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        # torch has no Dirichlet sampler that takes a generator: numpy's, seeded from ours.
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        perm = torch.randperm(labels.numel(), generator=generator)
        grouped = _label_sorted(perm, labels)  # classes contiguous, random order inside each class
        classes, counts = torch.unique_consecutive(labels[grouped], return_counts=True)
        rank = torch.arange(grouped.numel()) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        for _ in range(_DIRICHLET_DRAWS):  # the worker of each sample: class c is cut at floor(cumsum(p_c) * N_c)
            proportions = torch.from_numpy(rng.dirichlet(np.full(n, self.alpha), size=len(counts)))
            cuts = torch.floor(torch.cumsum(proportions, dim=1) * counts[:, None].double()).long()
            cuts[:, -1] = counts  # rounding never drops the last samples of a class
            owner = (rank[:, None] >= torch.repeat_interleave(cuts, counts, dim=0)).sum(dim=1)
            sizes = torch.bincount(owner, minlength=n)
            if (sizes > 0).all():
                break
        else:
            raise UserException(f"Heterogeneity {self.spec!r} left a worker without samples in {_DIRICHLET_DRAWS} "
                                f"draws; use a larger alpha or fewer workers.")
        order = torch.sort(owner, stable=True).indices
        return list(torch.split(grouped[order], sizes.tolist()))

