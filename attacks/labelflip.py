"""Label flipping: a Byzantine worker trains on targets y -> C - 1 - y.

A data-poisoning attack (e.g. Allen-Zhu et al., ICLR 2021; Karimireddy et al.,
ICLR 2022): the workers' gradients are then computed honestly on the flipped
labels, so they look like ordinary gradients of a wrong task.
"""
from __future__ import annotations

import torch

from attacks.base import DataAttack, register
from experiments.tools import UserException


@register("labelflip")
class LabelFlip(DataAttack):
    """Label flipping (data attack): target y becomes C - 1 - y."""

    def poison(self, inputs: torch.Tensor, targets: torch.Tensor,
               num_classes: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        if num_classes is None or num_classes < 1:
            raise UserException(f"Attack 'labelflip' needs at least one class, got {num_classes}.")
        if targets.dtype.is_floating_point or targets.dtype == torch.bool:
            raise UserException("Attack 'labelflip' needs integer class targets.")
        if targets.numel() and not (0 <= int(targets.min()) and int(targets.max()) < num_classes):
            raise UserException(f"Attack 'labelflip': targets must lie in [0, {num_classes}).")
        return inputs.clone(), (num_classes - 1) - targets
