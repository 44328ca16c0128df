"""Centered clipping (Karimireddy, He & Jaggi, ICML 2021, "Learning from history for Byzantine robust optimization").

Starting from its previous output v (zero at first), L times:
v <- v + (1/n) sum_i (x_i - v) min(1, tau / |x_i - v|). The output becomes the
next call's centre (the rule's state). A non-finite vector is infinitely far,
so its clipped contribution is dropped. Requires n >= 2f + 1.
"""
from __future__ import annotations

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances_to, weighted_mean
from experiments.tools import UserException


@register("cclip")
class CenteredClipping(Rule):
    """Centered clipping around the previous output, radius tau, L iterations (Karimireddy et al. 2021)."""

    tau: float = 10.0
    iters: int = 1
    bound = (2, 1)
    state_keys = ("centre",)  # the previous output, a [d] tensor (None at first): the next call's centre

    def validate(self) -> None:
        self.need(self.tau > 0 and self.iters >= 1, "tau > 0 and iters >= 1")

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n, d = gradients.shape
        centre = self.centre
        if centre is None:
            centre = torch.zeros(d, dtype=gradients.dtype, device=gradients.device)
        elif centre.shape != (d,):
            raise UserException(f"cclip's centre has {centre.numel()} coordinates but the gradients have {d}; "
                                "call reset() when the model changes.")
        centre = centre.to(device=gradients.device, dtype=gradients.dtype)
        for _ in range(self.iters):
            centre = clip_step(gradients, centre, self.tau)
        self.centre = centre
        return centre.clone()


def clip_step(gradients: torch.Tensor, centre: torch.Tensor, tau: float) -> torch.Tensor:
    """One centred-clipping iteration: centre + mean_i (x_i - centre) min(1, tau / |x_i - centre|)."""
    n = gradients.shape[0]
    distance = squared_distances_to(gradients, centre).sqrt()
    good = torch.isfinite(distance)
    scale = torch.where(good, (tau / distance).clamp(max=1.0), 0.0)
    # centre + (1/n) sum_i s_i (x_i - centre) = (1 - mean s) centre + (1/n) sum_i s_i x_i
    moved = weighted_mean(scale / n, gradients, good)
    return moved + (1 - scale.sum() / n).to(gradients.dtype) * centre
