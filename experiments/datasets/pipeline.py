"""How a run serves its dataset: the dataset spec ``name(flip=..., normalise=...)``.

The simulator keeps a dataset as tensors on the device, so what torchvision
does with transforms it does on whole batches:

- ``flip`` (default false): each training sample is mirrored left-right with
  probability 1/2 each time it is drawn, and each test image at each
  evaluation. This is the Fashion-MNIST pipeline of the ByzantineMomentum code
  (El Mhamdi, Guerraoui & Rouault, ICLR 2021) and of ByzFL: torchvision's
  ``RandomHorizontalFlip`` in both the training and the test transform;
- ``normalise`` (default true): pixels standardised by the dataset's mean and
  standard deviation; false leaves them in [0, 1], as those pipelines do.

Every registered dataset takes both. A spec prints the parameters that differ
from their defaults, so ``fashionmnist(flip=false)`` is ``fashionmnist``: a
run that leaves them alone keeps the identity it had before they existed.
"""
from __future__ import annotations

from typing import ClassVar

import torch

from experiments.grammar import parse_spec
from experiments.plugin import Plugin

__all__ = ["Pipeline", "parse", "flip_mask", "hflip"]

FLIP_PROBABILITY = 0.5  # torchvision's RandomHorizontalFlip default


class Pipeline(Plugin):
    """A dataset by name, with how its samples are served (flips, normalisation)."""

    family: ClassVar[str] = "dataset"
    flip: bool = False
    normalise: bool = True

    def __init__(self, name: str, **params: object) -> None:
        self.name = name  # an instance's own name: one class serves every dataset
        super().__init__(**params)

    @property
    def identity(self) -> str:
        """The spec, defaults left out: a bare name stays the identity it always was."""
        return self.spec


def parse(spec: str) -> Pipeline:
    """The `Pipeline` of a dataset spec (``"fashionmnist(flip=true,normalise=false)"``); the name is not checked."""
    (name, params), = parse_spec(spec, "dataset")
    return Pipeline(name, **params)


def flip_mask(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """A bool tensor of ``shape`` on the CPU, each entry true with probability 1/2, drawn from ``generator``."""
    return torch.rand(shape, generator=generator) < FLIP_PROBABILITY


def hflip(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``images`` [*mask.shape, C, H, W] with the samples where ``mask`` is true mirrored left-right (along W)."""
    where = mask.to(images.device).reshape(*mask.shape, *[1] * (images.dim() - mask.dim()))
    return torch.where(where, images.flip(-1), images)
