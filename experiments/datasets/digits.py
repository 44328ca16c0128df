"""The 8x8 handwritten digits bundled with scikit-learn (UCI optdigits test part).

1797 grey images of 8x8 pixels with values 0..16, ten classes; embedded, so it
works offline. A fixed split from a seeded generator: 1437 training, 360 test
images. Pixels are scaled to [0,1]; normalisation uses the training split's
mean and standard deviation.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from experiments.datasets.spec import Spec, register

__all__ = ["SPEC", "TRAIN_SIZE"]

TRAIN_SIZE = 1437
_SPLIT_SEED = 0


@functools.cache
def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(_SPLIT_SEED)).numpy()
    train, test = order[:TRAIN_SIZE], order[TRAIN_SIZE:]
    return images[train], labels[train], images[test], labels[test]


def _read(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    x_train, y_train, x_test, y_test = _split()
    return (x_train.copy(), y_train.copy()) if train else (x_test.copy(), y_test.copy())


@functools.cache
def _stats() -> tuple[tuple[float, ...], tuple[float, ...]]:
    x_train = _split()[0]
    return (float(x_train.mean()),), (float(x_train.std()),)


SPEC = register(Spec(name="digits", description="8x8 handwritten digits bundled with scikit-learn (1437 train / 360 test, offline)",
                     num_classes=10, read=_read, stats=_stats))
