"""CRFL's training (Xie, Chen, Chen & Li, ICML 2021, "CRFL: Certifiably robust federated learning against
backdoor attacks"), without its certification.

Each round the server averages the updates (FedAvg), clips the norm of the
global model's parameters to rho_t and adds Gaussian noise N(0, sigma^2) to
every parameter: w' = clip(w - lr mean_i x_i, rho_t) + noise, with
clip(v, r) = v min(1, r / |v|). The clipping threshold grows with the round
as in the authors' code for MNIST: rho_t = min(rho, start + growth t), t the
round counted from 1; defaults rho = 15 and sigma = 0.01 from that code's
MNIST configuration (sigma 0.01 for every dataset there), start = 2 and
growth = 0.1 from its schedule (``start`` >= ``rho`` gives a constant rho).

The rule acts on the parameters, which it reads with the server's step from
`RoundInfo` (``params``, ``lr``), and returns the aggregate that makes the
server's step land on w': (w - w') / lr, for a server that applies exactly
w - lr * aggregate (lr the scheduled rate in one-gradient steps; -lr of
``server_opt = "sgd(lr=...)"`` in a federated round, whose server steps on
-aggregate). The step then lands on w' up to float rounding of w - lr (w - w') / lr.
A run refuses what breaks that relation (adaptive server optimisers, momentum
on the aggregate or the update, weight decay). The noise is drawn from the
rule's generator. The certification (parameter smoothing at test time) is
not part of byzsim. Not robust on its own: the mean of a non-finite vector
is NaN. No requirement on (n, f).
"""
from __future__ import annotations

import math

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances_to
from experiments.tools import UserException


@register("crfl")
class CRFL(Rule):
    """FedAvg, then the global parameters clipped to norm rho_t and noised with sigma (Xie et al. 2021)."""

    randomised = True
    needs = frozenset({"params", "lr"})
    rho: float = 15.0
    sigma: float = 0.01
    start: float = 2.0
    growth: float = 0.1

    def validate(self) -> None:
        self.need(self.rho > 0 and self.start > 0, "rho > 0 and start > 0")
        self.need(0 <= self.sigma < math.inf and 0 <= self.growth < math.inf, "finite sigma >= 0 and growth >= 0")

    def threshold(self, step: int) -> float:
        """rho_t of the step counted from 0 (the authors' round t = step + 1)."""
        return min(self.rho, self.start + self.growth * (step + 1))

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        lr = self.info.lr
        if lr == 0:
            raise UserException("crfl sets the next parameters through the server's step, which is 0 here (lr = 0).")
        params = self.info.params.to(device=gradients.device, dtype=gradients.dtype)
        landed = params - lr * gradients.mean(dim=0)
        norm = float(squared_distances_to(landed[None, :]).sqrt())
        limit = self.threshold(self.info.step)
        if norm > limit:
            landed = landed * (limit / norm)
        if self.sigma:
            landed = landed + self.gaussian(self.sigma, landed)
        return (params - landed) / lr
