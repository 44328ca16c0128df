"""Anti-CGE (ByzantineMomentum's `attacks/anticge.py`) against its formula, by hand."""
import math

import torch

import aggregators
import attacks
from attacks.base import AttackContext

EPS = torch.finfo(torch.float64).eps

# Norms 5, 1, 2, 10: sorted (1, 0), (0, 2), (3, 4), (0, -10).
HONEST = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [0.0, -10.0]], dtype=torch.float64)


def ctx(n, decl_f):
    return AttackContext(nb_workers=n, decl_f=decl_f, aggregator=None, generator=None)


def close(out, expected):
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64), rtol=1e-15, atol=0)


def test_minus_the_kept_sum_just_below_the_first_dropped_norm():
    # h = 4, f_decl = 2: k = 2 kept honest vectors (1, 0) and (0, 2); the first dropped has norm 5.
    # The original's sum counts the smallest twice: s = 2 (1, 0) + (0, 2) = (2, 2), |s| = 2 sqrt(2).
    # Sent: -5 (1 - 8 eps) (2, 2) / (2 sqrt(2)) = -(5 / sqrt(2)) (1, 1) (1 - 8 eps).
    out = attacks.get("anticge")(HONEST, 2, ctx(6, 2))
    expected = -5 / math.sqrt(2) * (1 - 8 * EPS)
    assert out.shape == (2, 2)
    close(out, [[expected, expected]] * 2)
    assert bool((out.norm(dim=1) < 5).all())


def test_counting_the_smallest_once():
    # s = (1, 0) + (0, 2) = (1, 2), |s| = sqrt(5): sent -5 (1, 2) / sqrt(5) = -sqrt(5) (1, 2).
    out = attacks.get("anticge", double_first=False)(HONEST, 2, ctx(6, 2))
    root = math.sqrt(5) * (1 - 8 * EPS)
    close(out, [[-root, -2 * root]] * 2)


def test_cge_keeps_every_byzantine_vector():
    # n = 6, f = 2: CGE keeps the 4 smallest norms: both Byzantine (norm just below 5), (1, 0) and (0, 2).
    byz = attacks.get("anticge")(HONEST, 2, ctx(6, 2))
    out = aggregators.get("cge")(torch.cat([HONEST, byz]), 2)
    torch.testing.assert_close(out, (byz[0] * 2 + torch.tensor([1.0, 2.0], dtype=torch.float64)) / 4)


def test_no_honest_vector_kept_sends_minus_the_smallest():
    # h = 2, f_decl = 2: k = 0, s = (1, 0), radius just below 1.
    out = attacks.get("anticge")(HONEST[1:3], 2, ctx(4, 2))
    close(out, [[-(1 - 8 * EPS), 0.0]] * 2)


def test_more_byzantine_than_declared_sends_nan():
    out = attacks.get("anticge")(HONEST, 3, ctx(7, 2))
    assert out.shape == (3, 2) and bool(out.isnan().all())


def test_zero_sum_is_sent_as_is():
    honest = torch.tensor([[1.0, 0.0], [-2.0, 0.0], [0.0, 5.0]], dtype=torch.float64)
    # k = 2, s = 2 (1, 0) + (-2, 0) = 0.
    assert attacks.get("anticge")(honest, 1, ctx(4, 1)).tolist() == [[0.0, 0.0]]


def test_float32_norm_stays_strictly_below():
    g = torch.Generator().manual_seed(0)
    honest = torch.randn(8, 100_000, generator=g) * torch.rand(8, 1, generator=g)
    byz = attacks.get("anticge")(honest, 3, ctx(11, 3))
    out = aggregators.get("cge")(torch.cat([honest, byz]), 3)
    kept = honest[honest.double().norm(dim=1).argsort()[:5]]
    torch.testing.assert_close(out, (kept.sum(0) + 3 * byz[0]) / 8)
