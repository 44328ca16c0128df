"""Anti-CGE (El Mhamdi, Guerraoui & Rouault, ICLR 2021 code, LPD-EPFL/ByzantineMomentum, `attacks/anticge.py`).

An attack on comparative gradient elimination (`cge`), which averages the
n - f_decl smallest-norm vectors. Sort the h honest vectors by norm (stable;
a non-finite norm counts as +inf), g_(0) the smallest, and let k = h - f_decl.
A vector whose norm is strictly below |g_(k)| is always kept, and so are the k
honest vectors g_(0..k-1). Every Byzantine worker sends

    -r * s / |s|,   s = g_(0) + g_(0) + g_(1) + ... + g_(k-1),   r just below |g_(k)|,

the opposite of the kept honest vectors' sum at the largest norm still kept.
The original starts s from a copy of g_(0) and then adds all k vectors, so
g_(0) counts twice (``double_first = true``, the default); false counts it
once. "Just below": the original takes the next float64 towards 0; here r is
|g_(k)| less 8 units in the last place of the vectors' dtype, so the forged
vector's norm stays below |g_(k)| once rounded to that dtype. s = 0 is sent as
is. With k < 0 (fewer honest vectors than f_decl) k is taken as 0: s = g_(0).
With more Byzantine workers than declared (f > f_decl) CGE must keep one of
them, and every Byzantine worker sends NaN, as the original does.
"""
from __future__ import annotations

import math

import torch

from attacks.base import AttackContext, GradientAttack, register


@register("anticge")
class AntiCGE(GradientAttack):
    """Anti-CGE (ByzantineMomentum's code): minus the kept honest sum, at a norm just below the first dropped one."""

    double_first: bool = True  # the original's sum counts the smallest-norm honest vector twice

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        if f > ctx.decl_f:
            return honest.new_full((f, honest.shape[1]), math.nan)
        norms = honest.double().square().sum(dim=1).nan_to_num(nan=math.inf)  # float64; non-finite rows: +inf
        order = norms.sort(stable=True).indices
        k = max(honest.shape[0] - ctx.decl_f, 0)
        kept = honest.index_select(0, order[:k]).sum(dim=0)
        if self.double_first or k == 0:
            kept += honest[order[0]]
        radius = norms[order[k]].sqrt().item() * (1 - 8 * torch.finfo(honest.dtype).eps)
        length = kept.double().norm().item()
        return kept.mul_(-radius / length) if length > 0 else kept
