"""Infinite batch streams over datasets, and helpers to build them.

A `Dataset` yields batches forever through `sample` (restarting its loader when
exhausted), and finite epochs through `epoch` when built from a name.
Shuffling always draws from an explicit, seeded `torch.Generator`.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from experiments import datasets
from experiments.configuration import Configuration, place
from experiments.paths import default_root
from experiments.tools import UserException

__all__ = ["Dataset", "make_datasets", "batch_dataset", "make_sampler", "get_default_transform"]

get_default_transform = datasets.get_default_transform


def make_sampler(loader: Iterable) -> Iterator:
    """Yield the loader's batches forever, restarting it when exhausted.

    Raises `UserException` (on the first draw) when the loader yields nothing.
    """
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise UserException("The data loader is empty: it yields no batch (empty dataset, or drop_last "
                                "with a batch size larger than the dataset).")


def batch_dataset(inputs: torch.Tensor, labels: torch.Tensor, train: bool = False, batch_size: int | None = None,
                  split: float | int = 0.75, seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Infinite batches from the first `split` samples (train) or the rest (test).

    `split` is a fraction when < 1, else a count. Training batches follow a new
    permutation every epoch, drawn from a generator seeded with `seed`; test
    batches go through the test part in order. ``batch_size`` None or 0: the whole part.
    """
    if len(inputs) != len(labels):
        raise UserException(f"batch_dataset: {len(inputs)} inputs but {len(labels)} labels.")
    count = int(len(inputs) * split) if split < 1 else int(split)
    if not 0 < count < len(inputs):
        raise UserException(f"Split {split!r} of {len(inputs)} samples leaves an empty training or test part.")
    inputs, labels = (inputs[:count], labels[:count]) if train else (inputs[count:], labels[count:])
    size = batch_size or len(labels)
    if size < 0:
        raise UserException(f"batch_dataset: batch size must be positive, got {batch_size}.")
    generator = torch.Generator().manual_seed(seed)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            order = torch.randperm(len(labels), generator=generator) if train else torch.arange(len(labels))
            for start in range(0, len(labels), size):
                index = order[start:start + size]
                yield inputs[index], labels[index]
    return batches()


class Dataset:
    """Infinite batches from a dataset name, a generator, or one fixed batch.

    Args:
        data: a dataset name (see `experiments.datasets`; other torchvision
            dataset names also work), an iterator yielding batches forever, or
            one batch repeated forever.
        name: a name for messages (default: `data` when a string).
        root: dataset folder (default: `Dataset.get_default_root()`).
        *args, **kwargs: for a name, forwarded to `experiments.datasets.build`
            (``train``, ``transform``, ``download``...), except the loader's
            ``batch_size`` (None/0: full batch), ``shuffle`` (default: ``train``),
            ``num_workers`` (default 0), ``drop_last`` and ``seed`` (shuffling seed, default 0).
    """

    def __init__(self, data: Any, name: str | None = None, root: str | Path | None = None, *args: Any, **kwargs: Any):
        self._loader: torch.utils.data.DataLoader | None = None
        self.dataset: torch.utils.data.Dataset | None = None
        if isinstance(data, str):
            self.name = name or data
            self._loader = self._make_loader(data, root, args, kwargs)
            self._iter = make_sampler(self._loader)
        elif args or kwargs:
            raise TypeError("Extra arguments are only accepted with a dataset name.")
        elif isinstance(data, Iterator):
            self.name, self._iter = name or "generator", data
        else:
            self.name, self._iter = name or "batch", itertools.repeat(data)

    def _make_loader(self, data: str, root: str | Path | None, args: tuple, kwargs: dict) -> torch.utils.data.DataLoader:
        batch_size = kwargs.pop("batch_size", None)
        num_workers = kwargs.pop("num_workers", 0)
        drop_last = kwargs.pop("drop_last", False)
        seed = kwargs.pop("seed", 0)
        shuffle = kwargs.pop("shuffle", None)
        self.dataset = datasets.build(data, root, *args, **kwargs)
        if shuffle is None:
            shuffle = kwargs.get("train", True)
        return torch.utils.data.DataLoader(
            self.dataset, batch_size=batch_size or max(len(self.dataset), 1), shuffle=shuffle,
            num_workers=num_workers, drop_last=drop_last, persistent_workers=num_workers > 0,
            generator=torch.Generator().manual_seed(seed))

    def __str__(self) -> str:
        return f"dataset {self.name}"

    @classmethod
    def get_default_root(cls) -> Path:
        """`$BYZSIM_DATA` if set, else ``~/.cache/byzsim/data`` if it exists, else the temp dir."""
        return default_root()

    def sample(self, config: Configuration | None = None) -> Any:
        """The next batch, placed according to `config` (unchanged if None)."""
        return place(next(self._iter), config)

    def epoch(self, config: Configuration | None = None) -> Iterator:
        """One finite pass over the dataset (only for datasets built from a name)."""
        if self._loader is None:
            raise UserException(f"Dataset {self.name!r} has no finite epoch: it was built from a generator or a batch.")
        return (place(batch, config) for batch in self._loader)


def make_datasets(dataset: str, train_batch: int | None = None, test_batch: int | None = None,
                  train_transforms: Callable | None = None, test_transforms: Callable | None = None,
                  num_workers: int | tuple[int, int] = 1, **custom_args: Any) -> tuple[Dataset, Dataset]:
    """Training and test `Dataset`s of one dataset (default transforms when None given).

    `num_workers` is an int for both loaders or a (train, test) pair; `custom_args`
    go to the dataset constructor (``root``, ``download``, ``seed``...).
    """
    train_workers, test_workers = num_workers if isinstance(num_workers, tuple) else (num_workers, num_workers)
    root = custom_args.pop("root", None)
    trainset = Dataset(dataset, None, root, train=True, batch_size=train_batch, transform=train_transforms,
                       num_workers=train_workers, **custom_args)
    testset = Dataset(dataset, None, root, train=False, batch_size=test_batch, transform=test_transforms,
                      num_workers=test_workers, **custom_args)
    return trainset, testset
