"""Adaptive ALIE and IPM: the attack's scale tuned against the configured defence.

As in ByzFL (González et al. 2025, "ByzFL: research framework for robust
federated learning") and the evaluations of Allouah et al. (AISTATS 2023,
"Fixing by mixing"): the Byzantine vector is base + s * direction (ALIE: mean
- z * std, s = z, or mean + z * std with ``sign=1``; IPM: -epsilon * mean,
s = epsilon), and a line search over
s >= 0 maximises ||aggregate - honest mean||, the aggregate coming from the
aggregator chain actually configured (pre-aggregation included) through its
side-effect-free ``trial``. The search starts at the fixed attack's default
scale, so it never does less damage than the fixed attack, and uses at most
``evals`` aggregations.

The attacker does not know the server's random draws: every candidate is
evaluated with the same draws from the attacker's own generator (one seed
taken from ``ctx.generator`` per step), never with the server's, so a
randomised defence (bucketing's permutation, DnC's subsets, SignGuard's
coordinates) is attacked as its guarantee assumes. ``knows_server_rng=true``
models the worst case, an attacker who can predict the server's draws: each
candidate is then evaluated with exactly the draws the server will make.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch

from attacks.alie import alie_z
from attacks.base import AttackContext, GradientAttack, register
from attacks.stats import coordinate_std, deviations
from experiments.tools import UserException

__all__ = ["OptimalALIE", "OptimalIPM", "line_maximize"]


def line_maximize(fn: Callable[[float], float], start: float, step: float,
                  evals: int) -> tuple[float, float]:
    """Maximise ``fn`` over s >= 0 with at most ``evals`` calls; return (best s, best value).

    Expand upward from ``start``, doubling the step while the value improves;
    then refine around the best point, halving the step each round and trying
    one step above and below it. Every round calls ``fn`` at least once.
    """
    best_s, best = start, fn(start)
    used = 1
    while used < evals:
        used += 1
        value = fn(best_s + step)
        if value <= best:
            break
        best_s, best, step = best_s + step, value, 2 * step
    while used < evals:
        step /= 2
        for s in (best_s + step, best_s - step):
            if s < 0 or used >= evals:
                continue
            used += 1
            value = fn(s)
            if value > best:
                best_s, best = s, value
                break
    return best_s, best


class _Adaptive(GradientAttack):
    """Line search of base + s * direction against ``ctx.aggregator.trial``."""

    evals: int = 16
    start: float | None = None  # None: the fixed attack's default scale
    step: float | None = None   # None: the start (1 when the start is 0)
    knows_server_rng: bool = False

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.last_scale: float | None = None

    def validate(self) -> None:
        self.need(self.evals >= 1, "evals >= 1")
        self.need(self.start is None or 0 <= self.start < math.inf, "a finite start >= 0")
        self.need(self.step is None or 0 < self.step < math.inf, "a finite step > 0")

    def line(self, mean: torch.Tensor, dev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (base, direction) pair of the attack."""
        raise NotImplementedError

    def default_start(self, f: int, ctx: AttackContext) -> float:
        """The fixed attack's default scale."""
        raise NotImplementedError

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        if ctx.aggregator is None:
            raise UserException(f"Attack {self.name!r} adapts to the aggregator, but none is configured.")
        h = honest.shape[0]
        mean, dev = deviations(honest)
        base, direction = self.line(mean, dev)
        del dev
        start = self.default_start(f, ctx) if self.start is None else self.start
        step = self.step if self.step is not None else (start if start > 0 else 1.0)
        # One [n, d] buffer for every trial: the honest rows are written once.
        stacked = honest.new_empty((h + f, honest.shape[1]))
        stacked[:h].copy_(honest)
        seed = None  # None: the server's own draws; else this step's seed, from the attacker's generator (0 without)
        if not self.knows_server_rng:
            seed = 0 if ctx.generator is None else int(torch.randint(2**62, (1,), generator=ctx.generator))

        def damage(s: float) -> float:
            torch.add(base, direction, alpha=s, out=stacked[h])
            stacked[h + 1:].copy_(stacked[h])
            draws = None if seed is None else torch.Generator().manual_seed(seed)  # the same for every candidate
            out = ctx.aggregator.trial(stacked, ctx.decl_f, generator=draws)
            value = torch.linalg.vector_norm(out - mean).item()
            return value if math.isfinite(value) else -math.inf

        self.last_scale, _ = line_maximize(damage, start, step, self.evals)
        return base.add(direction, alpha=self.last_scale)


@register("opt-alie")
class OptimalALIE(_Adaptive):
    """ALIE with z chosen by line search against the configured aggregator chain."""

    sign: Literal[-1, 1] = -1  # -1: mean - s * std (Baruch et al.); 1: mean + s * std (ByzFL's Opt-ALIE)

    def line(self, mean, dev):
        return mean, coordinate_std(dev, consume=True).mul_(self.sign)

    def default_start(self, f, ctx):
        try:
            return alie_z(ctx.nb_workers, f)
        except UserException:
            raise UserException(f"Attack 'opt-alie': the paper's z, its default start, needs 1 <= f < floor(n/2 + 1) "
                                f"(got n = {ctx.nb_workers}, f = {f}); pass start= instead.") from None


@register("opt-ipm")
class OptimalIPM(_Adaptive):
    """IPM with epsilon chosen by line search against the configured aggregator chain."""

    def line(self, mean, dev):
        return torch.zeros_like(mean), mean.neg()

    def default_start(self, f, ctx):
        return 0.1
