"""CIFAR-10 and CIFAR-100 from their Python pickles (Krizhevsky 2009).

CIFAR-10: the folder ``cifar-10-batches-py`` (``data_batch_1`` ..
``data_batch_5`` and ``test_batch``, each a pickled dict with ``data``
[N, 3072] uint8 and ``labels``); CIFAR-100: ``cifar-100-python`` (``train``
and ``test``, the 100 classes under ``fine_labels``). Each is looked for in
``<root>/<folder>``, ``<root>/<CIFAR10 or CIFAR100>/<folder>`` and ``<root>``
itself, and fetched there by torchvision's own downloader when asked
(``byzsim data download cifar100``). Training images are augmented with a
random 4-pixel-padded crop and a horizontal flip in the torchvision-style
view; test images never are.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from experiments.datasets.spec import Spec, not_found, register
from experiments.tools import UserException

__all__ = ["CIFAR10", "CIFAR100", "read_batch"]


def read_batch(path: Path, label_key: bytes = b"labels") -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch as (uint8 [N, 32, 32, 3], int64 [N]); CIFAR-100 keeps its labels under ``fine_labels``."""
    try:
        with open(path, "rb") as file:
            batch = pickle.load(file, encoding="bytes")
        batch = {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}  # Python 2's or 3's keys
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as err:
        raise UserException(f"Cannot read CIFAR-10 batch {str(path)!r}: {type(err).__name__}: {err}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise UserException(f"CIFAR-10 batch {str(path)!r} has data {data.shape} and labels {labels.shape}.")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _reader(name: str, folder: str, class_name: str, train_files: list[str], test_files: list[str],
            label_key: bytes):
    """A reader of one CIFAR variant's pickles, fetching them with torchvision's downloader when asked."""
    def read(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
        folders = [root / folder, root / class_name / folder, root]
        names = train_files if train else test_files
        found = next((f for f in folders if all((f / n).is_file() for n in names)), None)
        if found is None and download:
            import torchvision.datasets
            try:
                getattr(torchvision.datasets, class_name)(str(root), train=train, download=True)
            except Exception as err:  # network and disk errors alike
                raise UserException(f"Downloading dataset {name!r} into {str(root)!r} failed: "
                                    f"{' '.join(str(err).split())}") from None  # torchvision's lines as one
            found = next((f for f in folders if all((f / n).is_file() for n in names)), None)
        if found is None:
            raise UserException(not_found(name, names, folders))
        parts = [read_batch(found / n, label_key) for n in names]
        return np.ascontiguousarray(np.concatenate([p[0] for p in parts])), np.concatenate([p[1] for p in parts])
    return read


def _augment() -> list:
    import torchvision.transforms as T
    return [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]


CIFAR10 = register(Spec(name="cifar10", description="CIFAR-10 colour images, 3x32x32, 50000/10000 (local Python pickles)",
                        num_classes=10,
                        read=_reader("cifar10", "cifar-10-batches-py", "CIFAR10",
                                     [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
                        stats=lambda: ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)), augment=_augment))

CIFAR100 = register(Spec(name="cifar100", description="CIFAR-100 colour images, 3x32x32, 100 classes, 50000/10000 "
                                                      "(local Python pickles)",
                         num_classes=100,
                         read=_reader("cifar100", "cifar-100-python", "CIFAR100", ["train"], ["test"], b"fine_labels"),
                         stats=lambda: ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)), augment=_augment))
