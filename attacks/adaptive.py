"""Adaptive ALIE and IPM: the attack's scale tuned against the configured defence.

As in ByzFL (González et al. 2025, "ByzFL: research framework for robust
federated learning") and the evaluations of Allouah et al. (AISTATS 2023,
"Fixing by mixing"): the Byzantine vector is base + s * direction (ALIE: mean
- z * std, s = z; IPM: -epsilon * mean, s = epsilon), and a line search over
s >= 0 maximises ||aggregate - honest mean||, the aggregate coming from the
aggregator chain actually configured (pre-aggregation included) through its
side-effect-free ``trial``. The search starts at the fixed attack's default
scale, so it never does less damage than the fixed attack, and uses at most
``evals`` aggregations.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from attacks.alie import alie_z
from attacks.base import AttackContext, GradientAttack, register
from attacks.params import real, whole
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

    def __init__(self, evals: int = 16, start: float | None = None, step: float | None = None):
        self.evals = whole(self.name, "evals", evals, minimum=1)
        self.start = None if start is None else real(self.name, "start", start, minimum=0.0)
        self.step = None if step is None else real(self.name, "step", step, positive=True)
        self.last_scale: float | None = None

    def params(self) -> dict[str, object]:
        shown = {"evals": self.evals}
        shown.update({k: v for k, v in (("start", self.start), ("step", self.step)) if v is not None})
        return shown

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

        def damage(s: float) -> float:
            torch.add(base, direction, alpha=s, out=stacked[h])
            stacked[h + 1:].copy_(stacked[h])
            out = ctx.aggregator.trial(stacked, ctx.decl_f)
            value = torch.linalg.vector_norm(out - mean).item()
            return value if math.isfinite(value) else -math.inf

        self.last_scale, _ = line_maximize(damage, start, step, self.evals)
        return base.add(direction, alpha=self.last_scale)


@register("opt-alie")
class OptimalALIE(_Adaptive):
    """ALIE with z chosen by line search against the configured aggregator chain."""

    def line(self, mean, dev):
        return mean, coordinate_std(dev, consume=True).neg_()

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
