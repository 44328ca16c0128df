"""The models of reference codes, layer for layer, for faithful reproductions.

- ``cnn_mnist``: the 28x28 CNN of ByzFL (``cnn_mnist``) and of the
  ByzantineMomentum code (``simples-conv`` there): conv 1->20 (5x5), ReLU,
  max-pool 2; conv 20->50 (5x5), ReLU, max-pool 2; linear 800->500, ReLU;
  linear 500->C; log-softmax.
- ``cnn_bucketing``: the MNIST CNN of the bucketing paper's code (Karimireddy,
  He & Jaggi, ICLR 2022): conv 1->32 (3x3), ReLU; conv 32->64 (3x3) with no
  ReLU after it (as in their code), max-pool 2, channel dropout 0.25; linear
  9216->128, ReLU, dropout 0.5; linear 128->C; log-softmax.

They output log-probabilities, so ``--loss nll`` is their training loss;
cross-entropy on them is the same loss (log-softmax is idempotent).
"""
from __future__ import annotations

from torch import nn

__all__ = ["cnn_mnist", "cnn_bucketing"]


def cnn_mnist(num_classes: int = 10) -> nn.Module:
    """ByzFL's cnn_mnist / ByzantineMomentum's simples-conv: conv 20-50 (5x5), FC 800-500-C, log-softmax."""
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),    # 20x12x12
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),   # 50x4x4
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, num_classes), nn.LogSoftmax(dim=1))


def cnn_bucketing(num_classes: int = 10) -> nn.Module:
    """The bucketing paper's MNIST CNN: conv 32-64 (3x3), dropout, FC 9216-128-C, log-softmax."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(),                     # 32x26x26
        nn.Conv2d(32, 64, 3), nn.MaxPool2d(2), nn.Dropout2d(0.25),  # 64x12x12, no ReLU after conv2
        nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, num_classes), nn.LogSoftmax(dim=1))
