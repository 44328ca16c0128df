"""DBA, the distributed backdoor attack (Xie, Huang, Chen & Li, ICLR 2020, "DBA: Distributed Backdoor
Attacks against Federated Learning").

The global trigger (`attacks.triggers.dba_parts`: ``parts`` bars one pixel
high and ``size`` wide, two per row of bars, ``gap`` apart, offset by
``shift``) is split into its local parts: the Byzantine worker in row i of a
step's f vectors stamps part ``i mod parts`` on the first ``fraction`` of its
batch and relabels those samples as ``target``. No attacker ever trains on the
whole trigger; the backdoor is tested with it, the union of the parts,
stamped on the test examples of other classes. One per-row mask does every
worker at once. Defaults: the paper's MNIST trigger (Sec. 4, size 4, gap 2,
shift 0, four parts), and FLPoison's (``attackers/dba.py``) target label 7
and poisoning ratio 0.32 (the paper's 20 of 64 samples a batch). The paper's
and FLPoison's scaling of the update (model replacement, factor 100) is a
gradient attack of its own and is left out: this is DBA's data poisoning.
"""
from __future__ import annotations

import torch

from attacks.base import register
from attacks.targeted import DataView, Pair, TargetedAttack
from attacks.triggers import dba_parts, poisoned_count, stamp


@register("dba")
class DBA(TargetedAttack):
    """DBA (Xie et al. 2020): attacker i stamps local trigger i mod parts; the backdoor is tested with them all."""

    target: int = 7
    parts: int = 4
    size: int = 4
    gap: int = 2
    shift: int = 0
    value: float = 1.0  # pixel value in [0, 1] (white), normalised as the run's data is
    fraction: float = 0.32

    def validate(self) -> None:
        super().validate()
        self.need(self.parts >= 1, "parts >= 1")
        self.need(self.size >= 1, "size >= 1")
        self.need(self.gap >= 0, "gap >= 0")
        self.need(self.shift >= 0, "shift >= 0")
        self.need(0.0 <= self.value <= 1.0, "a pixel value 0 <= value <= 1")
        self.need(0.0 < self.fraction <= 1.0, "a poisoning fraction 0 < fraction <= 1")

    def prepare(self, view: DataView) -> None:
        super().prepare(view)
        height, width = self.need_image(view)
        bottom = (self.parts - 1) // 2 * (1 + self.gap) + self.shift + 1
        right = (min(self.parts, 2) - 1) * (self.size + self.gap) + self.shift + self.size
        self.need(bottom <= height and right <= width,
                  f"its global trigger ({bottom} rows by {right} columns from the top-left corner) inside the "
                  f"{height}x{width} image")
        self._parts = dba_parts((height, width), self.parts, self.size, self.gap, self.shift).to(view.mean.device)
        self._value = view.pixel(self.value)

    def poison(self, inputs: torch.Tensor, targets: torch.Tensor,
               num_classes: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Row i of the stacked batches ``[f, ..., b, C, H, W]`` gets local trigger i mod parts on the first
        ``fraction`` of its batch, relabelled as the target."""
        self.ready()
        k = poisoned_count(targets.shape[-1], self.fraction)
        rows = torch.arange(targets.shape[0], device=self._parts.device) % self.parts
        masks = self._parts[rows].view(targets.shape[0], *[1] * (targets.dim() - 1), *self._parts.shape[1:])
        inputs, targets = inputs.clone(), targets.clone()
        inputs[..., :k, :, :, :] = stamp(inputs[..., :k, :, :, :], masks, self._value)
        targets[..., :k] = self.target
        return inputs, targets

    def backdoor(self, inputs: torch.Tensor, labels: torch.Tensor) -> Pair:
        self.ready()
        keep = labels != self.target
        return stamp(inputs[keep], self._parts.any(dim=0), self._value), labels[keep]
