"""Min-Max and Min-Sum: the largest scaling that keeps the paper's distance constraint."""
import pytest
import torch

import attacks
from attacks.base import AttackContext

CTX = AttackContext(nb_workers=10, decl_f=2, aggregator=None, generator=None)


def test_hand_made_one_dimensional_example():
    # mean 2, unit direction -1; Min-Max: max |m - x_i| <= 5 gives m = 0;
    # Min-Sum: 3 g^2 + 14 <= 41 (worker 5's sum) gives g = 3, m = -1.
    honest = torch.tensor([[0.0], [1.0], [5.0]], dtype=torch.float64)
    assert attacks.get("minmax", direction="unit")(honest, 1, CTX).item() == pytest.approx(0.0, abs=1e-12)
    assert attacks.get("minsum", direction="unit")(honest, 1, CTX).item() == pytest.approx(-1.0, abs=1e-12)


def _max_distance(m, honest):
    return torch.cdist(m[None], honest).max()


def _sum_distance(m, honest):
    return torch.cdist(m[None], honest).square().sum()


def _bounds(honest):
    pairwise = torch.cdist(honest, honest)
    return pairwise.max(), pairwise.square().sum(dim=1).max()


def _perturbation(direction, honest):
    mean = honest.mean(dim=0)
    return {"std": -honest.std(dim=0), "unit": -mean / mean.norm(), "sign": -mean.sign()}[direction]


def _bisect(ok, hi=1e3, iters=200):
    lo = 0.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


@pytest.mark.parametrize("direction", ["std", "unit", "sign"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scaling_matches_a_brute_force_bisection_of_the_paper_constraint(direction, seed):
    g = torch.Generator().manual_seed(seed)
    honest = torch.randn(7, 5, generator=g, dtype=torch.float64) + torch.randn(5, generator=g, dtype=torch.float64)
    mean, p = honest.mean(dim=0), _perturbation(direction, honest)
    max_bound, sum_bound = _bounds(honest)
    gamma_max = _bisect(lambda s: _max_distance(mean + s * p, honest) <= max_bound)
    gamma_sum = _bisect(lambda s: _sum_distance(mean + s * p, honest) <= sum_bound)
    minmax = attacks.get("minmax", direction=direction)(honest, 3, CTX)
    minsum = attacks.get("minsum", direction=direction)(honest, 3, CTX)
    assert torch.allclose(minmax, (mean + gamma_max * p).expand(3, 5), atol=1e-9)
    assert torch.allclose(minsum, (mean + gamma_sum * p).expand(3, 5), atol=1e-9)
    assert _max_distance(minmax[0], honest) <= max_bound * (1 + 1e-9)
    assert _sum_distance(minsum[0], honest) <= sum_bound * (1 + 1e-9)


def test_identical_honest_vectors_leave_no_room():
    honest = torch.ones(4, 3)
    for name in ("minmax", "minsum"):
        assert torch.equal(attacks.get(name)(honest, 2, CTX), torch.ones(2, 3))
