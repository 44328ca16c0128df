"""Norm clipping with weak differential privacy (Sun, Kairouz, Suresh & McMahan, 2019, "Can you really
backdoor federated learning?").

Each vector is clipped to norm at most ``norm`` (M), x_i / max(1, |x_i| / M),
the clipped vectors are averaged, and Gaussian noise N(0, sigma^2) is added
to every coordinate of the average ("weak" DP: noise too small for a privacy
guarantee, enough to blunt a backdoor), drawn from the rule's generator.
Defaults: M = 3 and sigma = 0.025, the norm bound and noise level of the
paper's EMNIST experiments; ``sigma=0`` is norm clipping alone (no draw).
The paper adds the noise to the model, byzsim to the aggregate: the same in
a federated round whose server takes the aggregate as it is
(``server_opt = "sgd(lr=1)"``), scaled by the server's lr otherwise.
Non-finite vectors (and finite ones whose norm overflows) are left out of the
average. No requirement on (n, f): the bound on a vector's influence is M / n
whatever f is.
"""
from __future__ import annotations

import math

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances_to, weighted_mean


@register("normclip")
class NormClipping(Rule):
    """Mean of the vectors clipped to norm M, plus Gaussian noise sigma: weak DP (Sun et al. 2019)."""

    randomised = True
    norm: float = 3.0
    sigma: float = 0.025

    def validate(self) -> None:
        self.need(self.norm > 0 and 0 <= self.sigma < math.inf, "norm > 0 and a finite sigma >= 0")

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        norms = squared_distances_to(gradients).sqrt()
        good = torch.isfinite(norms)
        scale = torch.where(norms > self.norm, self.norm / norms, 1.0)
        out = weighted_mean(torch.where(good, scale, 0.0) / good.sum().clamp(min=1), gradients, good)
        return out if self.sigma == 0 else out + self.gaussian(self.sigma, out)
