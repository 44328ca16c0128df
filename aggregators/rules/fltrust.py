"""FLTrust (Cao, Fang, Liu & Gong, NDSS 2021, "FLTrust: Byzantine-robust federated learning via trust bootstrapping").

The server holds a small clean root dataset and computes its own update g_0 on
it each round, the way the workers compute theirs. Each vector gets the trust
score TS_i = ReLU(cos(g_i, g_0)), is rescaled to the norm of g_0,
g_i' = g_i |g_0| / |g_i|, and the output is sum_i TS_i g_i' / sum_i TS_i
(zero when every score is 0: no vector is trusted). ``root`` is the size of
the root set, 100 samples by default (the paper's default, Section 5); the
simulator draws it from the training set and leaves it out of the workers'
split. A non-finite vector, a zero one, or one whose norm overflows gets
score 0. No requirement on (n, f): the paper claims robustness against any
number of malicious clients.
"""
from __future__ import annotations

import torch

from aggregators.base import Rule, register
from aggregators.distances import squared_distances_to, weighted_mean


@register("fltrust")
class FLTrust(Rule):
    """Trust scores ReLU(cos) against the server's own update on a root set, vectors rescaled to its norm (Cao et al. 2021)."""

    root: int = 100
    needs = frozenset({"reference"})

    def validate(self) -> None:
        self.need(self.root >= 1, "root >= 1")

    def root_samples(self) -> int:
        return self.root

    def aggregate(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        reference = self.info.reference.to(device=gradients.device, dtype=gradients.dtype)
        scores, scale = trust(gradients, reference)
        total = scores.sum()
        if not bool(total > 0):
            return torch.zeros_like(reference)
        return weighted_mean(scores * scale / total, gradients, scores > 0)


def trust(gradients: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 [n] trust scores ReLU(cos(g_i, g_0)) and [n] rescaling factors |g_0| / |g_i| (0 where untrusted)."""
    norms = squared_distances_to(gradients).sqrt()
    own = squared_distances_to(reference[None, :]).sqrt()[0]
    usable = torch.isfinite(norms) & (norms > 0) & torch.isfinite(own) & (own > 0)
    dots = (gradients @ reference).double()
    overflow = usable & ~torch.isfinite(dots)  # finite rows whose product overflows the input's dtype
    if bool(overflow.any()):
        dots[overflow] = gradients[overflow].double() @ reference.double()
    scores = torch.where(usable, (dots / (norms * own)).nan_to_num(0.0).clamp(0.0, 1.0), 0.0)
    return scores, torch.where(scores > 0, own / norms, 0.0)
