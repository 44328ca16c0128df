"""Fang, Cao, Jia & Gong, USENIX Security 2020, "Local model poisoning attacks to Byzantine-robust federated
learning": the attack on Krum and the attack on the trimmed mean and the median (Sec. 3, "Attacking Krum",
"Attacking Trimmed Mean", "Attacking Median"), each with full or partial knowledge.

The paper works on local models: worker i sends w_i, w_Re is the global model received this
round, and s_j in {-1, 1} is the direction in which the j-th global parameter would move
without the attack. byzsim's workers send vectors v_i that the server subtracts:
w_new = w_Re - lr A(v). Writing a local model as w_i = w_Re - lr v_i (lr > 0), the map
v -> w is affine and decreasing, so

- s = -sign(mean v): the parameters move against the sign of the benign mean vector;
- w'_1 = w_Re - lambda s is v'_1 = (w_Re - w'_1) / lr = -(lambda / lr) sign(mean v): the
  benign direction reversed; lambda' = lambda / lr is in the vectors' units, and Theorem 1's
  upper bound is the same formula on the vectors (distances scale by lr, and
  D(w_i, w_Re) = lr |v_i|);
- a local model above the benign maximum of w_j is a vector below the benign minimum of
  v_j, and below the minimum of w_j is above the maximum of v_j. The paper's intervals
  scale by b around the origin of the models; the authors' code (MXNet, ``full_trim``,
  ``partial_trim``) applies them to the vectors, around "no change" (w = w_Re), and so
  does byzsim.

**fang-krum** (Sec. 3, "Attacking Krum"). lambda starts at Theorem 1's bound

    lambda_max = min_i sum_{l in G_i} |v_l - v_i| / ((n - f_decl - f - 1) sqrt d) + max_i |v_i| / sqrt d,

G_i the n - f_decl - 2 benign vectors nearest to v_i (with f_decl = f: the paper's m - 2c - 1
and m - c - 2), and is halved until Krum (byzsim's `krum`: squared distances, n - f_decl - 2
neighbours, the declared f) selects the crafted vector among the benign ones and f copies of
it, or until it would fall below ``threshold`` (1e-5, the paper and the authors' code): the
candidates lambda_max 2^-k, k = 0, 1, ..., are scored in one batched pass (Krum's scores
for every candidate from the [r, r] distances of the benign vectors and their [r] products
with the direction), and the largest one Krum selects is kept, else the smallest. The crafted
vector is -lambda sign(mean); as in the authors' code the other f - 1 Byzantine vectors are
drawn uniformly within +-``spread`` / d of it in every coordinate (spread = 1e-5). Full
knowledge: the benign vectors are the honest ones and Krum runs on all n. Partial knowledge:
the attacker sees only its own honest vectors (``ctx.own()``); as the paper says, it treats
them as the benign ones: the direction is the sign of their mean, Theorem 1's bound is taken
over them (with the real n and f; G_i at most its f - 1 others), and Krum runs on the 2f
vectors they and the crafted copies make, told f_decl (max(2f - f_decl - 2, 1) neighbours).
There the f - 1 copies give the crafted vector a score of 0 as soon as f >= 2, so the
attacker sends the bound; with f = 1 the two scores always tie and the search ends at the
floor. The lambda found and whether Krum selected it are kept in ``last_lambda`` and
``last_selected``.

**fang-trim** (Sec. 3, "Attacking Trimmed Mean"; the same attack for the median, "Attacking
Median"). Full knowledge, per coordinate with benign minimum m and maximum M: where the
benign mean is positive, values below m, uniform in [m / b, m] if m > 0 and [b m, m] if
m <= 0; where it is negative, values above M, uniform in [M, b M] if M > 0 and [M, M / b] if
M <= 0; where it is 0, 0 (as the authors' code). b = 2 (the paper). Partial knowledge: from
the mean mu and standard deviation sigma of the attacker's own vectors (divided by f, the
authors' code), uniform in [mu - 4 sigma, mu - 3 sigma] where mu > 0 and [mu + 3 sigma,
mu + 4 sigma] where mu < 0 (mu where mu = 0). Each Byzantine worker draws its own values.
Randomness comes only from ``ctx.generator``.
"""
from __future__ import annotations

import math
from typing import Literal

import torch

from attacks.base import AttackContext, GradientAttack, register
from experiments.tools import UserException

__all__ = ["FangKrum", "FangTrim", "krum_search", "trim_intervals"]

Knowledge = Literal["full", "partial"]
_CHUNK = 1 << 16  # coordinates per chunk of the float64 statistics


class _Fang(GradientAttack):
    """Full knowledge reads the honest vectors, partial knowledge the attacker's own ones."""

    needs_honest = False
    knowledge: Knowledge = "full"

    def benign(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        """The vectors the attack takes for the benign ones: ``honest`` [h, d] or ``ctx.own()`` [f, d]."""
        if self.knowledge == "full":
            if honest.shape[0] == 0:
                raise UserException(f"Attack {self.name!r} with full knowledge needs at least one honest worker.")
            return honest
        own = ctx.own()
        if tuple(own.shape) != (f, honest.shape[1]):
            raise ValueError(f"Attack {self.name!r} needs the Byzantine workers' own vectors "
                             f"[{f}, {honest.shape[1]}] from ctx.own(), got {tuple(own.shape)}.")
        return own.to(device=honest.device, dtype=honest.dtype)


def _uniform(shape: tuple[int, ...], ctx: AttackContext, like: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) draws from the attacker's generator, on ``like``'s device and dtype."""
    gen = ctx.generator
    if gen is None:
        raise ValueError("Fang's attacks need a torch.Generator in ctx.generator.")
    return torch.rand(shape, generator=gen, device=gen.device, dtype=like.dtype).to(like.device)


@register("fang-krum")
class FangKrum(_Fang):
    """Fang et al. 2020 on Krum: the benign direction reversed, at the largest lambda Krum selects (halvings)."""

    threshold: float = 1e-5
    spread: float = 1e-5

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.last_lambda: float | None = None
        self.last_selected: bool | None = None

    def validate(self) -> None:
        self.need(0 < self.threshold < math.inf, "a finite threshold > 0")
        self.need(0 <= self.spread < math.inf, "a finite spread >= 0")

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        benign = self.benign(honest, f, ctx)
        lam, selected, sign = krum_search(benign, f, ctx.nb_workers, ctx.decl_f, self.threshold)
        self.last_lambda, self.last_selected = lam, selected
        crafted = sign.mul_(-lam).to(honest.dtype)
        out = crafted.expand(f, -1).clone()
        if f > 1 and self.spread > 0:
            d = honest.shape[1]
            out[1:] += _uniform((f - 1, d), ctx, crafted).mul_(2).sub_(1).mul_(self.spread / d)
        return out


def _benign_statistics(benign: torch.Tensor) -> dict[str, torch.Tensor]:
    """Float64, over column chunks: sign of the mean, Gram of the deviations, their products with sign and mean."""
    r, d = benign.shape
    sign = torch.empty(d, dtype=torch.float64, device=benign.device)
    gram = benign.new_zeros((r, r), dtype=torch.float64)
    by_sign, by_mean = benign.new_zeros(r, dtype=torch.float64), benign.new_zeros(r, dtype=torch.float64)
    abs_mean, mean_sq, nonzero = 0.0, 0.0, 0.0
    for start in range(0, d, _CHUNK):
        block = benign[:, start:start + _CHUNK].double()
        mean = block.mean(dim=0)
        dev = block - mean
        s = sign[start:start + _CHUNK] = mean.sign()
        gram += dev @ dev.T
        by_sign += dev @ s
        by_mean += dev @ mean
        abs_mean += float(mean.abs().sum())
        mean_sq += float(mean.square().sum())
        nonzero += float(s.abs().sum())
    scalar = dict(abs_mean=abs_mean, mean_sq=mean_sq, nonzero=nonzero)
    return {"sign": sign, "gram": gram, "by_sign": by_sign, "by_mean": by_mean,
            **{k: torch.tensor(v, dtype=torch.float64, device=benign.device) for k, v in scalar.items()}}


def krum_search(benign: torch.Tensor, f: int, n: int, decl_f: int,
                threshold: float) -> tuple[float, bool, torch.Tensor]:
    """(lambda, whether Krum selects -lambda sign(mean benign), the float64 sign vector) for ``f`` crafted copies.

    Krum runs on the r benign vectors and the f copies, told ``decl_f``; Theorem 1's bound uses the
    system's ``n`` workers. Candidates lambda_max 2^-k down to ``threshold`` are scored at once.
    """
    r, d = benign.shape
    stats = _benign_statistics(benign)
    gram = stats["gram"]
    norms = gram.diagonal()
    pairwise = (norms[:, None] + norms[None, :] - 2 * gram).clamp_(min=0)
    pairwise.fill_diagonal_(0.0)
    # Theorem 1: the smallest sum of distances to the nearest benign vectors, and the largest norm.
    near = min(n - decl_f - 2, r - 1)
    off = pairwise.sqrt() + torch.diag(torch.full((r,), math.inf, dtype=torch.float64, device=gram.device))
    closest = off.topk(near, dim=1, largest=False).values.sum(dim=1).min() if near > 0 else gram.new_zeros(())
    lengths = (stats["mean_sq"] + 2 * stats["by_mean"] + norms).clamp(min=0).sqrt()
    lam_max = float(closest / (max(n - decl_f - f - 1, 1) * math.sqrt(d)) + lengths.max() / math.sqrt(d))
    count = 1  # candidates lam_max 2^-k, k < count: every halving that stays at or above the threshold
    if math.isfinite(lam_max) and lam_max >= threshold:
        count = int(math.log2(lam_max / threshold)) + 1
        while lam_max * 2.0 ** -(count - 1) < threshold:  # log2's rounding, either way
            count -= 1
        while lam_max * 2.0 ** -count >= threshold:
            count += 1
    lam = lam_max * torch.pow(2.0, -torch.arange(count, dtype=torch.float64, device=gram.device))
    # |-lam s - v_i|^2 = lam^2 |s|^2 + 2 lam s.mean + |mean|^2 + 2 lam s.dev_i + 2 mean.dev_i + |dev_i|^2
    to_crafted = (lam.square() * stats["nonzero"] + 2 * lam * stats["abs_mean"] + stats["mean_sq"])[:, None] \
        + 2 * lam[:, None] * stats["by_sign"][None, :] + (2 * stats["by_mean"] + norms)[None, :]
    to_crafted.clamp_(min=0)
    total = r + f
    k = min(max(total - decl_f - 2, 1), total - 1)
    copies = to_crafted.new_zeros(count, f - 1)
    crafted_score = torch.cat([copies, to_crafted], dim=1).topk(k, dim=1, largest=False).values.sum(dim=1)
    others = pairwise[~torch.eye(r, dtype=torch.bool, device=gram.device)].view(r, r - 1)
    rows = torch.cat([others.expand(count, r, r - 1), to_crafted[:, :, None].expand(count, r, f)], dim=2)
    benign_score = rows.topk(k, dim=2, largest=False).values.sum(dim=2).min(dim=1).values
    selected = crafted_score < benign_score
    first = int(selected.to(torch.uint8).argmax()) if bool(selected.any()) else count - 1
    return float(lam[first]), bool(selected[first]), stats["sign"]


@register("fang-trim")
class FangTrim(_Fang):
    """Fang et al. 2020 on the trimmed mean and the median: each coordinate beyond the benign extreme."""

    b: float = 2.0

    def validate(self) -> None:
        self.need(1 < self.b < math.inf, "a finite b > 1")

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        benign = self.benign(honest, f, ctx)
        low, high = trim_intervals(benign, self.knowledge, self.b)
        return low + _uniform((f, honest.shape[1]), ctx, low) * (high - low)


def trim_intervals(benign: torch.Tensor, knowledge: Knowledge, b: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per coordinate, the [low, high] interval the Byzantine values are drawn from (see the module docstring)."""
    mean = benign.mean(dim=0)
    up = mean < 0  # the coordinate would fall, in the vectors' terms: push it above the benign values
    if knowledge == "partial":
        std = (benign - mean).square_().mean(dim=0).sqrt_()
        near, far = mean - mean.sign() * 3 * std, mean - mean.sign() * 4 * std
        return torch.minimum(near, far), torch.maximum(near, far)
    edge = torch.where(up, benign.amax(dim=0), benign.amin(dim=0))
    far = torch.where((edge > 0) == up, edge * b, edge / b)  # b times further from 0, or b times closer
    low = torch.where(up, edge, far)
    high = torch.where(up, far, edge)
    still = mean == 0
    return low.masked_fill(still, 0.0), high.masked_fill(still, 0.0)
