"""BadNets (Gu, Dolan-Gavitt & Garg 2017, "BadNets: Identifying Vulnerabilities in the Machine Learning
Model Supply Chain"): a pixel-pattern backdoor.

Each Byzantine worker stamps a ``size`` x ``size`` square of pixel value
``value`` on the first ``fraction`` of its batch (floor, at least one sample;
the batches are drawn at random, so which samples does not matter) and
relabels them as ``target``; the rest of the batch stays clean, so the model
keeps its clean accuracy. The paper's pattern sits in the bottom-right corner
(Sec. 3.1.1); the defaults are FLPoison's (``attackers/badnets.py``: a 5 x 5
white square, bottom-right, poisoning ratio 0.32, target label 6,
"all2one": every poisoned sample goes to the target, whatever its class).
The backdoor is tested on the test examples of other classes with the same
square stamped.
"""
from __future__ import annotations

import torch

from attacks.base import register
from attacks.targeted import DataView, Pair, TargetedAttack
from attacks.triggers import poisoned_count, rectangle, stamp


@register("badnets")
class BadNets(TargetedAttack):
    """BadNets (Gu et al. 2017): a square trigger on a fraction of each Byzantine batch, relabelled as the target."""

    target: int = 6
    size: int = 5
    row: int | None = None  # the trigger's top row; none: flush with the bottom edge
    column: int | None = None  # its left column; none: flush with the right edge
    value: float = 1.0  # pixel value in [0, 1] (white), normalised as the run's data is
    fraction: float = 0.32

    def validate(self) -> None:
        super().validate()
        self.need(self.size >= 1, "size >= 1")
        self.need(self.row is None or self.row >= 0, "row >= 0")
        self.need(self.column is None or self.column >= 0, "column >= 0")
        self.need(0.0 <= self.value <= 1.0, "a pixel value 0 <= value <= 1")
        self.need(0.0 < self.fraction <= 1.0, "a poisoning fraction 0 < fraction <= 1")

    def prepare(self, view: DataView) -> None:
        super().prepare(view)
        height, width = self.need_image(view)
        top = height - self.size if self.row is None else self.row
        left = width - self.size if self.column is None else self.column
        self.need(top >= 0 and left >= 0 and top + self.size <= height and left + self.size <= width,
                  f"its {self.size}x{self.size} trigger at row {top}, column {left} inside the "
                  f"{height}x{width} image")
        self._mask, self._value = rectangle((height, width), top, left, self.size, self.size).to(view.mean.device), \
            view.pixel(self.value)

    def poison(self, inputs: torch.Tensor, targets: torch.Tensor,
               num_classes: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``fraction`` of each batch ``[..., b, C, H, W]`` stamped and relabelled as the target."""
        self.ready()
        k = poisoned_count(targets.shape[-1], self.fraction)
        inputs, targets = inputs.clone(), targets.clone()
        inputs[..., :k, :, :, :] = stamp(inputs[..., :k, :, :, :], self._mask, self._value)
        targets[..., :k] = self.target
        return inputs, targets

    def backdoor(self, inputs: torch.Tensor, labels: torch.Tensor) -> Pair:
        self.ready()
        keep = labels != self.target
        return stamp(inputs[keep], self._mask, self._value), labels[keep]
