"""Honest-vector statistics shared by several attacks.

Two-pass mean and variance: subtract the mean first, then square. The one-pass
``E[x^2] - E[x]^2`` form cancels catastrophically when the spread is small next
to the mean, and ``torch.std`` over dim 0 is several times slower on CPU.
"""
from __future__ import annotations

import torch

__all__ = ["deviations", "coordinate_std"]


def deviations(honest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The honest mean ``[d]`` and the deviations from it ``[h, d]``."""
    mean = honest.mean(dim=0)
    return mean, honest - mean


def coordinate_std(dev: torch.Tensor, *, consume: bool = False) -> torch.Tensor:
    """Coordinate-wise sample standard deviation (Bessel-corrected) from deviations.

    With a single honest vector the spread is zero. ``consume=True`` squares
    ``dev`` in place to save a ``[h, d]`` allocation.
    """
    h = dev.shape[0]
    squares = dev.square_() if consume else dev.square()
    return squares.sum(dim=0).div_(max(h - 1, 1)).sqrt_()
