"""``dpfedavg``: user-level DP at the server (McMahan et al., "Learning Differentially Private Recurrent Language
Models", ICLR 2018), with the adaptive clipping of Andrew et al. ("Differentially Private Learning with Adaptive
Clipping", NeurIPS 2021).

Each honest client (a worker, in one-gradient steps) clips the vector it sends,
its update after worker momentum, to l2 norm C; the attack sees these clipped
vectors (no noise is on them); the rule combines the m vectors of the round;
the server adds Gaussian noise of std sigma C / m to the rule's output, once,
before anything uses it (momentum, the update, the metrics). sigma C / m is
the noise of the mean over m clients, whose sensitivity to one client is
C / m: exact for ``average``. For every other rule the same noise is added
and the reported epsilon is the mean's: a robust rule's output can move by
more when one honest update changes (a rule that selects one vector, Krum,
can jump to another, up to 2 C or, with unclipped Byzantine vectors, further),
so the epsilon of a robust rule holds under the assumption that its
sensitivity is at most the mean's. Byzantine clients are not clipped.

Adaptive clipping (``adaptive=true``): each client also reports whether its
update's norm was at most C (b_i = 1; a Byzantine client's bit is read from
the vector it sends); the server takes the noisy fraction
b = (sum (b_i - 1/2) + N(0, count_std^2)) / m + 1/2 (the centred bits have
sensitivity 1/2) and sets C <- C exp(-clip_lr (b - quantile)), so that C
tracks the quantile ``quantile`` of the update norms (geometric update,
Algorithm 1). The two releases are one Gaussian mechanism of noise multiplier
z = (sigma_update^-2 + (2 count_std)^-2)^-1/2 (their Theorem 1): ``sigma`` is z,
the update noise is sigma_update = (z^-2 - (2 count_std)^-2)^-1/2, so z must
stay below 2 count_std.

Accounting: sample rate q = m / N (clients per round over the pool; 1 without
a pool), one step per round, delta below 1/N. Defaults: clip 0.1, quantile
0.5, clip_lr 0.2 and count_std = m / 20 are Andrew et al.'s initial clip norm
C_0, target quantile, (geometric) learning rate and clipped-count noise
(their experiments; TensorFlow Privacy's ``QuantileAdaptiveClipSumQuery``
documents the last three as their recommendation); sigma 1.0 and delta 1e-5
follow dpsgd's (Opacus's MNIST example), since McMahan et al. choose them per
experiment: give delta below 1/N for pools of 10^5 clients or more.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from experiments.tools import UserException
from simulator.core.engines.base import clip_factors
from simulator.core.privacy import GaussianPrivacy, Mechanism, Setup, register
from simulator.core.privacy.accounting import Accountant, calibrate

if TYPE_CHECKING:
    from simulator.core.config import Config

__all__ = ["DPFedAvg", "update_noise"]


def update_noise(z: float, count_std: float) -> float:
    """The update's noise multiplier that, with the clipped count's noise, makes one mechanism of multiplier ``z``
    (Andrew et al., NeurIPS 2021, Theorem 1); inf when the count's noise alone already spends more."""
    rest = z ** -2 - (2 * count_std) ** -2
    return rest ** -0.5 if rest > 0 else math.inf


@register("dpfedavg")
class DPFedAvg(GaussianPrivacy):
    """user-level DP at the server: client updates clipped, Gaussian noise on the aggregate (McMahan et al. 2018; adaptive clipping, Andrew et al. 2021)"""

    clip: float = 0.1
    adaptive: bool = False
    quantile: float = 0.5
    clip_lr: float = 0.2
    count_std: float | None = None  # default m / 20

    def validate(self) -> None:
        super().validate()
        self.need(0 < self.quantile < 1, "0 < quantile < 1")
        self.need(0 < self.clip_lr < math.inf, "clip_lr > 0 (finite)")
        self.need(self.count_std is None or 0 < self.count_std < math.inf, "count_std > 0 (finite)")

    def counting(self, m: int) -> float:
        """The clipped count's noise std for rounds of m clients."""
        return self.count_std if self.count_std is not None else m / 20

    def relations(self, c: "Config") -> list[tuple[bool, str]]:
        return [(self.delta < 1 / c.pool, f"dpfedavg needs delta below 1/N = {1 / c.pool:.3g}, N = {c.pool} the "
                                          f"{'clients of the pool' if c.clients is not None else 'workers'}"),
                (not self.adaptive or self.epsilon is not None
                 or math.isfinite(update_noise(self.sigma, self.counting(c.per_round))),
                 f"dpfedavg(adaptive=true) needs sigma below 2 count_std = {2 * self.counting(c.per_round):g} "
                 f"(the clipped count's noise would spend the whole budget): raise count_std or lower sigma")]

    def start(self, setup: Setup) -> "DPFedAvgRun":
        c = setup.config
        owner = f"Privacy {self.spec!r}"
        q, m = c.per_round / c.pool, c.per_round
        sigma = self.sigma if self.epsilon is None else calibrate(self.accountant, self.epsilon, self.delta, q,
                                                                  c.steps, owner)
        noise = update_noise(sigma, self.counting(m)) if self.adaptive else sigma
        if not math.isfinite(noise):
            raise UserException(f"{owner} needs a noise multiplier below 2 count_std = {2 * self.counting(m):g} "
                                f"for adaptive clipping, but epsilon={self.epsilon} needs {sigma:.4g}: raise "
                                f"count_std or epsilon.")
        generator = torch.Generator(device=setup.device).manual_seed(setup.seed)
        return DPFedAvgRun(self, sigma, noise, q, m, generator)


class DPFedAvgRun(Mechanism):
    """One run's DP-FedAvg: the clip norm in force, the server's noise, the accountant."""

    def __init__(self, spec: DPFedAvg, sigma: float, noise: float, q: float, m: int,
                 generator: torch.Generator) -> None:
        self.spec, self.noise, self.m, self.generator = spec, noise, m, generator
        self.clip = spec.clip
        self.accountant = Accountant(spec.accountant, sigma, q, spec.delta)
        self.norms: torch.Tensor | None = None  # the honest updates' norms this round, before clipping

    def sent(self, honest: torch.Tensor) -> torch.Tensor:
        squared = honest.square().sum(dim=1)
        self.norms = squared.sqrt()
        return honest * clip_factors(squared, self.clip).unsqueeze(1)

    def released(self, aggregate: torch.Tensor, byzantine: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(aggregate.shape, generator=self.generator, device=aggregate.device, dtype=aggregate.dtype)
        out = aggregate + noise.mul_(self.noise * self.clip / self.m)
        if self.spec.adaptive:  # Andrew et al., Algorithm 1: the noisy fraction of unclipped updates moves C
            norms = torch.cat([self.norms, byzantine.norm(dim=1)])
            centred = ((norms <= self.clip).to(aggregate.dtype) - 0.5).sum()  # bits b_i - 1/2: sensitivity 1/2
            centred = centred + torch.randn((), generator=self.generator, device=aggregate.device,
                                            dtype=aggregate.dtype) * self.spec.counting(self.m)
            fraction = float(centred) / self.m + 0.5
            self.clip *= math.exp(-self.spec.clip_lr * (fraction - self.spec.quantile))
        self.accountant.step()
        return out

    def epsilon(self) -> float:
        return self.accountant.epsilon()

    def summary(self) -> dict:
        return {"epsilon": self.epsilon(), "delta": self.spec.delta, "noise_multiplier": self.accountant.sigma,
                "sample_rate": self.accountant.q, "accountant": self.spec.accountant, "final_clip": self.clip}

    def state_dict(self) -> dict:
        return {"accountant": self.accountant.state_dict(), "generator": self.generator.get_state(),
                "clip": self.clip}

    def load_state_dict(self, state: dict) -> None:
        self.accountant.load_state_dict(state["accountant"])
        self.generator.set_state(state["generator"])
        self.clip = state["clip"]
