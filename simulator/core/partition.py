"""Data heterogeneity: split a training set's indices among the workers.

Each mode is a function from the labels, the number of workers and an explicit
`torch.Generator` to one int64 index tensor per worker (indices into the
training set, on the CPU). Modes:

- ``iid``: a random permutation cut into equal shares.
- ``dirichlet`` (``alpha``): for every class, the proportions of its samples
  given to the workers are drawn from Dir(alpha, ..., alpha) (Hsu, Qi and
  Brown, "Measuring the effects of non-identical data distribution for
  federated visual classification", 2019). Small alpha: few classes per
  worker; large alpha: close to iid.
- ``extreme``: the samples sorted by label, cut into contiguous shards, so that
  with at least as many workers as classes each worker sees one or two classes.
- ``gamma`` (``gamma`` in [0, 1]): ByzFL's gamma-similarity
  (``gamma_similarity_niid`` in ByzFL's ``DataDistributor``,
  github.com/LPD-EPFL/byzfl, ``byzfl/fed_framework/data_distributor.py``): a
  fraction gamma of the samples is split iid, the remaining samples are sorted
  by label and split into contiguous shards, and worker i gets the i-th share of
  both. gamma = 1 is iid, gamma = 0 is ``extreme``.

Every worker must receive at least one sample; otherwise `UserException`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from experiments.registry import Registry
from experiments.tools import UserException

__all__ = ["partition", "names", "describe", "params_of", "MODES"]

_DIRICHLET_DRAWS = 100  # redraws of the proportions before giving up on empty workers


@dataclass(frozen=True)
class Mode:
    """A heterogeneity mode: its split function and the Config fields it reads."""
    split: Callable[..., list[torch.Tensor]]
    params: tuple[str, ...]


MODES: Registry[Mode] = Registry("heterogeneity")


def _register(name: str, description: str, params: tuple[str, ...] = ()):
    def wrap(split):
        MODES.add(name, Mode(split, params), description)
        return split
    return wrap


def names() -> list[str]:
    """Every heterogeneity mode, sorted."""
    return MODES.names()


def describe(name: str) -> str:
    """One line describing a heterogeneity mode."""
    return MODES.describe(name)


def params_of(name: str) -> tuple[str, ...]:
    """The parameters (Config fields) a mode reads, e.g. ``("alpha",)`` for dirichlet."""
    return MODES.get(name).params


def partition(targets: torch.Tensor, nb_workers: int, mode: str, generator: torch.Generator,
              **params: float) -> list[torch.Tensor]:
    """Split the indices of a labelled training set among `nb_workers` workers.

    Args:
        targets: int64 labels of the training set, shape [N].
        nb_workers: how many workers share the set (honest and Byzantine).
        mode: one of `names()`.
        generator: the only source of randomness (a CPU `torch.Generator`).
        **params: the mode's parameters (``alpha`` for dirichlet, ``gamma`` for gamma).

    Returns:
        One non-empty int64 CPU tensor of indices per worker, disjoint, covering the set.
    """
    spec = MODES.get(mode)
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        takes = ", ".join(spec.params) if spec.params else "no parameter"
        raise UserException(f"Heterogeneity {mode!r} does not take {', '.join(unknown)}; it takes {takes}.")
    missing = [p for p in spec.params if p not in params]
    if missing:
        raise UserException(f"Heterogeneity {mode!r} needs the parameter {missing[0]} (e.g. {missing[0]}=0.5).")
    labels = _check_labels(targets)
    if isinstance(nb_workers, bool) or not isinstance(nb_workers, int) or nb_workers < 1:
        raise UserException(f"The number of workers must be a positive integer, got {nb_workers!r}.")
    if labels.numel() < nb_workers:
        raise UserException(
            f"Cannot give each of {nb_workers} workers a sample of a training set of {labels.numel()} samples.")
    parts = spec.split(labels, nb_workers, generator, **params)
    sizes = torch.tensor([len(p) for p in parts])
    if (sizes == 0).any():
        raise UserException(
            f"Heterogeneity {mode!r} left {int((sizes == 0).sum())} of {nb_workers} workers without any sample; "
            f"use fewer workers or a milder setting.")
    return parts


def _check_labels(targets: torch.Tensor) -> torch.Tensor:
    if not isinstance(targets, torch.Tensor) or targets.dim() != 1 or targets.dtype.is_floating_point:
        raise UserException("Partitioning needs the training labels as a 1-D integer tensor.")
    labels = targets.detach().to("cpu", torch.int64)
    if labels.numel() > 0 and labels.min() < 0:
        raise UserException("Partitioning needs non-negative class labels.")
    return labels


def _number(name: str, value: object, low: float, high: float, *, open_low: bool = False) -> float:
    """Check a numeric parameter against [low, high] (or (low, high]) and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserException(f"Heterogeneity parameter {name} must be a finite number, got {value!r}.")
    if value > high or value < low or (open_low and value == low):
        where = "positive" if open_low and low == 0 and high == math.inf else f"in [{low}, {high}]"
        raise UserException(f"Heterogeneity parameter {name} must be {where}, got {value}.")
    return float(value)


def _label_sorted(indices: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The given indices (already in random order) stably sorted by their label."""
    order = torch.sort(labels[indices], stable=True).indices
    return indices[order]


@_register("iid", "random equal split: every worker draws from the same distribution")
def _iid(labels: torch.Tensor, n: int, generator: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(labels.numel(), generator=generator)
    return list(torch.tensor_split(perm, n))


@_register("extreme", "label-sorted contiguous shards: each worker sees one or two classes (n >= classes)")
def _extreme(labels: torch.Tensor, n: int, generator: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(labels.numel(), generator=generator)
    return list(torch.tensor_split(_label_sorted(perm, labels), n))


@_register("gamma", "ByzFL gamma-similarity: a fraction gamma split iid, the rest label-sorted (gamma=...)",
           ("gamma",))
def _gamma(labels: torch.Tensor, n: int, generator: torch.Generator, gamma: float) -> list[torch.Tensor]:
    gamma = _number("gamma", gamma, 0.0, 1.0)
    perm = torch.randperm(labels.numel(), generator=generator)
    cut = int(gamma * labels.numel())
    similar = torch.tensor_split(perm[:cut], n)
    # the sorted shards make up the difference, so every worker ends with N/n samples (+-1)
    totals = torch.tensor([len(share) for share in torch.tensor_split(perm, n)])
    rest_sizes = totals - torch.tensor([len(share) for share in similar])
    sorted_rest = torch.split(_label_sorted(perm[cut:], labels), rest_sizes.tolist())
    return [torch.cat(pair) for pair in zip(similar, sorted_rest)]


@_register("dirichlet", "per-class proportions ~ Dir(alpha) (Hsu et al. 2019); small alpha = skewed (alpha=...)",
           ("alpha",))
def _dirichlet(labels: torch.Tensor, n: int, generator: torch.Generator, alpha: float) -> list[torch.Tensor]:
    alpha = _number("alpha", alpha, 0.0, math.inf, open_low=True)
    # torch has no Dirichlet sampler that takes a generator: numpy's, seeded from ours.
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
    perm = torch.randperm(labels.numel(), generator=generator)
    grouped = _label_sorted(perm, labels)  # classes contiguous, random order inside each class
    classes, counts = torch.unique_consecutive(labels[grouped], return_counts=True)
    rank = torch.arange(grouped.numel()) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    for _ in range(_DIRICHLET_DRAWS):
        owner = _dirichlet_owners(rng, alpha, n, counts, rank)
        sizes = torch.bincount(owner, minlength=n)
        if (sizes > 0).all():
            break
    else:
        raise UserException(
            f"Heterogeneity 'dirichlet' with alpha={alpha} left a worker without samples in "
            f"{_DIRICHLET_DRAWS} draws; use a larger alpha or fewer workers.")
    order = torch.sort(owner, stable=True).indices
    return list(torch.split(grouped[order], sizes.tolist()))


def _dirichlet_owners(rng: np.random.Generator, alpha: float, n: int, counts: torch.Tensor,
                      rank: torch.Tensor) -> torch.Tensor:
    """Worker of each sample (grouped by class): class c is cut at floor(cumsum(p_c) * N_c)."""
    proportions = torch.from_numpy(rng.dirichlet(np.full(n, alpha), size=len(counts)))
    cuts = torch.floor(torch.cumsum(proportions, dim=1) * counts[:, None].double()).long()
    cuts[:, -1] = counts  # rounding never drops the last samples of a class
    cuts_per_sample = torch.repeat_interleave(cuts, counts, dim=0)
    return (rank[:, None] >= cuts_per_sample).sum(dim=1)
