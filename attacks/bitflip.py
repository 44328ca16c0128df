"""Bit flipping / reversed gradient: each Byzantine worker sends minus its own gradient.

The worker computes an honest gradient on its own data, then reverses it
(e.g. Allen-Zhu et al., ICLR 2021 "bit flipping"; Blades and ByzFL offer it).
It is the only gradient attack that needs the workers' own honest gradients,
which the simulator passes in ``ctx.own_gradients``. ``scale`` multiplies the
reversed gradient (1 = the plain attack).
"""
from __future__ import annotations

import torch

from attacks.base import AttackContext, GradientAttack, register
from attacks.params import real


@register("bitflip")
class BitFlip(GradientAttack):
    """Bit flipping: each Byzantine worker sends minus its own honest gradient."""

    needs_honest = False
    needs_own_gradients = True

    def __init__(self, scale: float = 1.0):
        self.scale = real(self.name, "scale", scale, positive=True)

    def params(self) -> dict[str, object]:
        return {} if self.scale == 1.0 else {"scale": self.scale}

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        own = ctx.own_gradients
        if own is None or tuple(own.shape) != (f, honest.shape[1]):
            got = None if own is None else tuple(own.shape)
            raise ValueError(f"Attack {self.name!r} needs the Byzantine workers' own gradients "
                             f"[{f}, {honest.shape[1]}] in ctx.own_gradients, got {got}.")
        return own.to(device=honest.device, dtype=honest.dtype).mul(-self.scale)


@register("reverse")
class Reverse(BitFlip):
    """Reversed gradient: each Byzantine worker sends minus (scale times) its own gradient."""
