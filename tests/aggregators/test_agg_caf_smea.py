"""CAF and SMEA (ByzFL's two covariance-based rules): hand computations, brute force, ByzFL's numbers."""
import itertools
import math

import pytest
import torch

import aggregators
from aggregators.distances import squared_distances
from aggregators.rules.caf import caf_weights, top_direction
from experiments.tools import UserException


def rows(*values):
    return torch.tensor(values, dtype=torch.float64).reshape(len(values), -1)


# SMEA ------------------------------------------------------------------------------------------------

def test_smea_keeps_the_subset_of_least_variance_in_one_dimension():
    # Rows 0, 1, 3, 10, f = 1: the subsets of three have variances {0,1,3}: 14/9, {0,1,10}: 178/9,
    # {0,3,10}: 434/9, {1,3,10}: 402/9 (population variances); the first wins, mean 4/3.
    out = aggregators.get("smea")(rows(0, 1, 3, 10), 1)
    assert out.item() == pytest.approx(4 / 3)


def test_smea_minimises_the_largest_eigenvalue_not_the_total_variance():
    # Rows (-1,0), (1,0), (0,1), (0,-1), (1,1); f = 1. The cross {0,1,2,3}: covariance diag(1/2, 1/2),
    # largest eigenvalue 1/2, trace 1. {0,1,2,4}: mean (1/4, 1/2), covariance [[11/16, 1/8], [1/8, 1/4]],
    # largest eigenvalue 15/32 + sqrt((7/32)^2 + 1/64) = 0.7207, trace 15/16 < 1. SMEA keeps the cross;
    # a rule minimising the total variance would keep the other.
    x = rows([-1, 0], [1, 0], [0, 1], [0, -1], [1, 1])
    torch.testing.assert_close(aggregators.get("smea")(x, 1), torch.zeros(2, dtype=torch.float64))
    other = x[[0, 1, 2, 4]]
    cov = (other - other.mean(0)).T @ (other - other.mean(0)) / 4
    assert torch.linalg.eigvalsh(cov)[-1].item() == pytest.approx(15 / 32 + math.sqrt((7 / 32) ** 2 + 1 / 64))
    assert cov.trace().item() == pytest.approx(15 / 16)


@pytest.mark.parametrize("seed", range(6))
def test_smea_matches_a_brute_force_over_the_d_by_d_covariances(seed):
    g = torch.Generator().manual_seed(seed)
    n, f, d = 8, 2, 3 + seed % 3
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    x[:f] += 4 * torch.randn(f, d, generator=g, dtype=torch.float64)
    best = min(itertools.combinations(range(n), n - f),
               key=lambda s: torch.linalg.eigvalsh(torch.cov(x[list(s)].T, correction=0))[-1].item())
    torch.testing.assert_close(aggregators.get("smea")(x, f), x[list(best)].mean(0))


def test_smea_ties_keep_the_lowest_rows_as_byzfl_does():
    # ByzFL's own example: rows (1,2,3), (4,5,6), (7,8,9), f = 1; {0,1} and {1,2} have the same covariance.
    x = torch.tensor([[1., 2, 3], [4, 5, 6], [7, 8, 9]])
    torch.testing.assert_close(aggregators.get("smea")(x, 1), torch.tensor([2.5, 3.5, 4.5]))


def test_smea_refuses_too_many_subsets_in_one_line_naming_the_count():
    with pytest.raises(UserException, match=r"max_subsets = 200000 .*C\(30, 8\) = 5852925"):
        aggregators.get("smea")(torch.zeros(30, 2), 8)
    assert aggregators.get("smea(max_subsets=6000000)").unmet(30, 8) is None
    assert aggregators.get("smea").unmet(4, 2) == "n >= 2f + 1"
    with pytest.raises(UserException, match="max_subsets >= 1"):
        aggregators.get("smea(max_subsets=0)")


def test_smea_never_keeps_a_non_finite_vector():
    x = rows(0, 1, 2, math.nan, 3)
    assert aggregators.get("smea")(x, 1).item() == pytest.approx(1.5)


# CAF -------------------------------------------------------------------------------------------------

def test_caf_first_pass_by_hand():
    # Rows 0, 1, 2, 3, 10 with unit weights: mean 3.2, variance 62.8 / 5 = 12.56, v = +-1,
    # tau = (x - 3.2)^2 = 10.24, 4.84, 1.44, 0.04, 46.24.
    x = rows(0, 1, 2, 3, 10)
    value, tau = top_direction(squared_distances(x), torch.ones(5, dtype=torch.float64))
    assert value == pytest.approx(12.56)
    torch.testing.assert_close(tau, torch.tensor([10.24, 4.84, 1.44, 0.04, 46.24], dtype=torch.float64))


def test_caf_two_passes_by_hand():
    # Rows (-1,0), (2,0), (0,0), (1/3,10); f = 1, so the loop runs while the weights sum to more than 2.
    # Pass 1: mean (1/3, 5/2), covariance diag(7/6, 75/4) (no cross term), lambda = 18.75, v = (0,1);
    # tau = 25/4 (three times), 225/4 -> weights 8/9, 8/9, 8/9, 0 (sum 8/3 > 2).
    # Pass 2: mean (1/3, 0), lambda = 14/9 < 18.75, v = (1,0); tau = 16/9, 25/9, 1/9, 0 ->
    # weights 8/25, 0, 64/75, 0 (sum 88/75 <= 2): stop. The smallest lambda is pass 2's: mean (1/3, 0).
    x = rows([-1, 0], [2, 0], [0, 0], [1 / 3, 10])
    weights = caf_weights(squared_distances(x), 1, max_iter=100)
    torch.testing.assert_close(weights, torch.tensor([1 / 3, 1 / 3, 1 / 3, 0], dtype=torch.float64))
    torch.testing.assert_close(aggregators.get("caf")(x, 1), torch.tensor([1 / 3, 0], dtype=torch.float64))
    assert top_direction(squared_distances(x), weights * 3)[0] == pytest.approx(14 / 9)


def byzfl_caf_on_a_line(values, f):
    """ByzFL's CAF for d = 1 (its power step is then exact), transcribed with plain floats."""
    n = len(values)
    c, best, best_value = [1.0] * n, None, math.inf
    while sum(c) > n - 2 * f:
        total = sum(c)
        mu = sum(ci * xi for ci, xi in zip(c, values)) / total
        value = sum(ci * (xi - mu) ** 2 for ci, xi in zip(c, values)) / total
        if value < best_value:
            best, best_value = mu, value
        tau = [(xi - mu) ** 2 for xi in values]
        c = [ci * (1 - t / max(tau)) for ci, t in zip(c, tau)]
    return best


@pytest.mark.parametrize("seed", range(8))
def test_caf_matches_byzfls_definition_in_one_dimension(seed):
    g = torch.Generator().manual_seed(seed)
    f = 1 + seed % 3
    x = torch.randn(2 * f + 3 + seed % 4, generator=g, dtype=torch.float64)
    x[:f] += 6 * torch.randn(f, generator=g, dtype=torch.float64)
    expected = byzfl_caf_on_a_line(x.tolist(), f)
    assert aggregators.get("caf")(x[:, None], f).item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("values, f, caf, smea", [
    # What ByzFL 0.0.11 returned (byzfl.CAF(f), byzfl.SMEA(f) on float64 numpy columns); with d = 1 its
    # largest-eigenvalue estimate is exact, so these are its definition's numbers, not a random draw's.
    ([0., 1, 2, 3, 10], 1, 1.626237299115176, 1.5),
    ([-3., 0.5, 1, 1.5, 2, 9, 2.5], 2, 1.4746625675253395, 1.5),
    ([1., 2, 4, 8, 16, 32, 64], 3, 3.355675773737604, 3.75),  # CAF: 1,295 passes
])
def test_byzfl_numbers(values, f, caf, smea):
    x = rows(*values)
    assert aggregators.get("caf")(x, f).item() == pytest.approx(caf, rel=1e-12)
    assert aggregators.get("smea")(x, f).item() == pytest.approx(smea, rel=1e-12)


def test_caf_max_iter_bounds_the_passes():
    x = rows(1, 2, 4, 8, 16, 32, 64)
    assert aggregators.get("caf(max_iter=1)")(x, 3).item() == pytest.approx(127 / 7)  # pass 1: the mean
    assert aggregators.get("caf(max_iter=100)")(x, 3).item() != pytest.approx(3.355675773737604, rel=1e-3)
    with pytest.raises(UserException, match="max_iter >= 1"):
        aggregators.get("caf(max_iter=0)")


def test_caf_requirement_and_f_zero():
    assert aggregators.get("caf").unmet(4, 2) == "n >= 2f + 1"
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(aggregators.get("caf")(x, 0), x.mean(0))


def test_caf_gives_a_non_finite_vector_no_weight():
    x = rows([0, 0], [1, 0], [0, 1], [1, 1], [math.inf, 0])
    weights = caf_weights(squared_distances(x), 1, 100)
    assert weights[-1].item() == 0 and torch.isfinite(aggregators.get("caf")(x, 1)).all()
