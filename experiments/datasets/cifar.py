"""CIFAR-10 from its Python pickles (Krizhevsky 2009).

The folder ``cifar-10-batches-py`` (``data_batch_1`` .. ``data_batch_5`` and
``test_batch``, each a pickled dict with ``data`` [N, 3072] uint8 and
``labels``) is looked for in ``<root>``, ``<root>/CIFAR10`` and ``<root>``
itself. Training images are augmented with a random 4-pixel-padded crop and a
horizontal flip; test images never are.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from experiments.datasets.spec import Spec, not_found, register
from experiments.tools import UserException

__all__ = ["CIFAR10", "read_batch"]

_FOLDER = "cifar-10-batches-py"


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch as (uint8 [N, 32, 32, 3], int64 [N])."""
    try:
        with open(path, "rb") as file:
            batch = pickle.load(file, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as err:
        raise UserException(f"Cannot read CIFAR-10 batch {str(path)!r}: {type(err).__name__}: {err}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise UserException(f"CIFAR-10 batch {str(path)!r} has data {data.shape} and labels {labels.shape}.")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _read(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    folders = [root / _FOLDER, root / "CIFAR10" / _FOLDER, root]
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    found = next((f for f in folders if all((f / n).is_file() for n in names)), None)
    if found is None and download:
        import torchvision.datasets
        try:
            torchvision.datasets.CIFAR10(str(root), train=train, download=True)
        except Exception as err:  # network and disk errors alike
            raise UserException(f"Downloading dataset 'cifar10' into {str(root)!r} failed: {err}") from None
        found = next((f for f in folders if all((f / n).is_file() for n in names)), None)
    if found is None:
        raise UserException(not_found("cifar10", names, folders))
    parts = [read_batch(found / n) for n in names]
    return np.ascontiguousarray(np.concatenate([p[0] for p in parts])), np.concatenate([p[1] for p in parts])


def _augment() -> list:
    import torchvision.transforms as T
    return [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]


CIFAR10 = register(Spec(name="cifar10", description="CIFAR-10 colour images, 3x32x32, 50000/10000 (local Python pickles)",
                        num_classes=10, read=_read,
                        stats=lambda: ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)), augment=_augment))
