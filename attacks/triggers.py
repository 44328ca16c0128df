"""Pixel triggers of backdoor attacks: where a trigger lies, and stamping it on batches of images.

A trigger is a boolean mask over the image plane ``[H, W]`` (or one mask per
attacker, ``[parts, H, W]``) and a value per channel, already in the run's
input space (`attacks.targeted.DataView.pixel`). Stamping sets the masked
pixels of every channel to that value on images ``[..., C, H, W]`` of any
leading shape (workers, local steps, batch), in one `torch.where`, so a
poisoned step needs no Python loop over workers or samples.
"""
from __future__ import annotations

import torch

__all__ = ["dba_parts", "poisoned_count", "rectangle", "stamp"]


def rectangle(shape: tuple[int, int], top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The bool ``[H, W]`` mask of the ``height`` x ``width`` rectangle whose top-left pixel is (top, left)."""
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[top:top + height, left:left + width] = True
    return mask


def dba_parts(shape: tuple[int, int], parts: int, size: int, gap: int, shift: int) -> torch.Tensor:
    """DBA's local triggers (Xie et al., ICLR 2020, Sec. 3 and Fig. 2): bool ``[parts, H, W]``.

    Part i is a bar one pixel high and ``size`` wide, at row ``(i // 2) * (1 + gap) + shift`` and column
    ``(i % 2) * (size + gap) + shift``: two bars side by side per row of bars, ``gap`` pixels apart (the
    layout of FLPoison's ``attackers/dba.py``). The global trigger is their union.
    """
    masks = torch.zeros((parts, *shape), dtype=torch.bool)
    for i in range(parts):  # a handful of parts, once per run: not a hot path
        top, left = (i // 2) * (1 + gap) + shift, (i % 2) * (size + gap) + shift
        masks[i, top, left:left + size] = True
    return masks


def stamp(images: torch.Tensor, mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``images`` ``[..., C, H, W]`` with the pixels where ``mask`` is true set to ``value`` ``[C]``; a new tensor.

    ``mask`` is ``[H, W]`` or any shape that broadcasts against ``images`` without its channel dimension
    (``[f, 1, ..., H, W]``: one trigger per worker).
    """
    where = mask.to(images.device).unsqueeze(-3)
    return torch.where(where, value.to(images).view(-1, 1, 1), images)


def poisoned_count(batch: int, fraction: float) -> int:
    """How many samples of a batch of ``batch`` a poisoning ``fraction`` stamps: floor(fraction * batch), at
    least one (FLPoison's ``int(len_images * poisoning_ratio)``, which a small batch would round to none)."""
    return min(batch, max(1, int(fraction * batch)))
