"""No attack: the Byzantine workers behave honestly.

The baseline row of a benchmark. It is the data attack that poisons nothing:
its workers' gradients are computed honestly on their own batches, exactly as
any other data attack's are.
"""
from __future__ import annotations

from typing import ClassVar

import torch

from attacks.base import DataAttack, register


@register("none")
class NoAttack(DataAttack):
    """No attack: the Byzantine workers send honest gradients of their own batches."""

    momentum: ClassVar[bool] = True  # honest behaviour, momentum included: not a parameter of `none`
    begin: ClassVar[int] = 0  # nor is a schedule: it behaves honestly at every step anyway
    end: ClassVar[int | None] = None
    every: ClassVar[int] = 1

    def poison(self, inputs: torch.Tensor, targets: torch.Tensor,
               num_classes: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        return inputs, targets
