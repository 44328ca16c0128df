"""Targeted label flipping: a Byzantine worker relabels its ``source``-class samples as ``target``.

The targeted form of label flipping (Tolpegin et al., ESORICS 2020, "Data
Poisoning Attacks Against Federated Learning Systems"; FLPoison's
``LabelFlipping`` with ``attack_model = "targeted"``): no trigger, every
source-class sample of each Byzantine batch is flipped, the other classes are
left alone, so the model learns to send the source class to the target. The
backdoor is tested on the source-class test examples, untouched. Defaults
are FLPoison's (``attackers/labelflipping.py``: source label 2, target label 7).
`labelflip` is the untargeted flip of every label.
"""
from __future__ import annotations

from typing import ClassVar

import torch

from attacks.base import register
from attacks.targeted import DataView, Pair, TargetedAttack


@register("targetflip")
class TargetFlip(TargetedAttack):
    """Targeted label flipping (Tolpegin et al. 2020): source-class samples relabelled as the target class."""

    source: int = 2
    target: int = 7
    on_ranks: ClassVar[bool] = True  # a pure function of the batch: ranks holding Byzantine workers run it alone

    def validate(self) -> None:
        super().validate()
        self.need(self.source >= 0, "source >= 0")
        self.need(self.source != self.target, "source != target")

    def prepare(self, view: DataView) -> None:
        super().prepare(view)
        self.need(self.source < view.num_classes, f"source < {view.num_classes} (the number of classes)")

    def poison(self, inputs: torch.Tensor, targets: torch.Tensor,
               num_classes: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        return inputs.clone(), torch.where(targets == self.source, self.target, targets)

    def backdoor(self, inputs: torch.Tensor, labels: torch.Tensor) -> Pair:
        keep = labels == self.source
        return inputs[keep], labels[keep]
