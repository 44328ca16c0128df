"""Small models for the simulator's default workloads (MNIST-like, 8x8 digits, CIFAR-10).

Small on purpose: a simulation evaluates one gradient per worker per step, so
the model's size sets the cost of every experiment.
"""
from __future__ import annotations

from torch import nn

__all__ = ["full", "conv", "digits", "cifar", "logit"]


def full(num_classes: int = 10) -> nn.Module:
    """Fully connected 784-100-C network with ReLU for 1x28x28 images."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, num_classes))


def conv(num_classes: int = 10) -> nn.Module:
    """Small CNN for 1x28x28 images: two conv(5x5)+max-pool layers, then two linear layers."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),    # 16x12x12
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),   # 32x4x4
        nn.Flatten(), nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, num_classes))


def digits(num_classes: int = 10) -> nn.Module:
    """MLP 64-64-C with ReLU for the 8x8 digits (input [N,1,8,8] or [N,64])."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, num_classes))


def cifar(num_classes: int = 10) -> nn.Module:
    """CNN with batch-norm for 3x32x32 images: three conv+BN+pool blocks, then two linear layers."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 64),  # 64x4x4
                         nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, num_classes))


def logit(in_features: int = 784, num_classes: int = 10) -> nn.Module:
    """Logistic regression (one linear layer) over the flattened input."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes))
