"""Numerical hazards: Gram-matrix cancellation, overflow, non-finite input."""
import math

import pytest
import torch

from hypothesis import given, settings
from hypothesis import strategies as st

import aggregators
from aggregators.coordinatewise import sort_rows, sorted_mean_of_closest
from aggregators.sorting import sorted_rows
from aggregators.distances import squared_distances, squared_distances_to
from aggregators.rules.krum import krum_order


def exact_distances(x):
    x = x.double()
    return ((x[:, None, :] - x[None, :, :]) ** 2).sum(dim=2)


@pytest.mark.parametrize("spread", [1e-3, 1e-4, 1e-5])
def test_near_identical_vectors_get_exact_distances_and_the_right_krum_winner(spread):
    g = torch.Generator().manual_seed(0)
    d = 20_000
    base = torch.randn(d, generator=g) * 10
    x = (base + spread * torch.randn(9, d, generator=g)).float()
    exact = exact_distances(x)
    torch.testing.assert_close(squared_distances(x), exact, rtol=1e-6, atol=0)
    assert int(krum_order(squared_distances(x), 2)[0]) == int(krum_order(exact, 2)[0])
    out = aggregators.get("krum")(x, 2)
    assert torch.equal(out, x[int(krum_order(exact, 2)[0])])


def test_identical_copies_are_at_distance_exactly_zero_and_the_rest_stays_exact(monkeypatch):
    """The f identical copies an attack sends take the pairwise path, not a full float64 pass."""
    import aggregators.distances as distances

    g = torch.Generator().manual_seed(1)
    honest = torch.randn(8, 5000, generator=g) + 3.0
    copies = (honest.mean(dim=0) - 1.5 * honest.std(dim=0)).expand(4, -1)
    x = torch.cat([honest, copies]).contiguous()
    monkeypatch.setattr(distances, "_centred_float64", lambda *a: pytest.fail("full float64 pass"))
    dist = squared_distances(x)
    assert torch.equal(dist[8:, 8:], torch.zeros(4, 4, dtype=torch.float64))
    torch.testing.assert_close(dist, exact_distances(x), rtol=1e-5, atol=0)  # float32 Gram accuracy elsewhere


def test_plain_float32_gram_would_have_been_wrong_here():
    # Sanity check of the hazard the guard exists for (the guard is what the test above checks).
    g = torch.Generator().manual_seed(0)
    base = torch.randn(20_000, generator=g) * 10
    x = (base + 1e-5 * torch.randn(9, 20_000, generator=g)).float()
    gram = x @ x.T
    naive = gram.diagonal()[:, None] + gram.diagonal()[None, :] - 2 * gram
    exact = exact_distances(x)
    off = ~torch.eye(9, dtype=torch.bool)
    assert float(((naive.double() - exact)[off].abs() / exact[off]).max()) > 0.1


def test_huge_finite_vectors_do_not_overflow_into_nan():
    x = torch.randn(7, 50, generator=torch.Generator().manual_seed(1))
    x[3] = 3e38
    dist = squared_distances(x)
    assert not bool(torch.isnan(dist).any())
    assert bool(torch.isfinite(dist[3, torch.arange(7) != 3]).all())  # float64 recomputation
    x[4] = -3e38
    assert aggregators.get("krum")(x, 2).abs().max() < 10


def test_non_finite_rows_are_infinitely_far():
    x = torch.randn(5, 4, dtype=torch.float64)
    x[1, 2] = math.nan
    x[3, 0] = -math.inf
    dist = squared_distances(x)
    assert bool(torch.isinf(dist[[1, 3]]).all()) and bool(torch.isinf(dist[:, [1, 3]]).all())
    assert dist[0, 0] == 0 and not bool(torch.isnan(dist).any())
    to = squared_distances_to(x, x[0])
    assert torch.isinf(to[[1, 3]]).all() and to[0] == 0


@pytest.mark.parametrize("spec", ["median", "trmean", "meamed", "phocas"])
def test_coordinatewise_rules_ignore_nan_in_a_minority(spec):
    x = torch.tensor([[1.0, 2.0], [math.nan, 3.0], [2.0, math.nan], [3.0, 4.0], [4.0, 5.0]])
    out = aggregators.get(spec)(x, 1)
    assert bool(torch.isfinite(out).all())


def test_average_breaks_on_nan_as_documented():
    x = torch.tensor([[1.0], [math.nan], [2.0]])
    assert math.isnan(aggregators.get("average")(x, 1).item())


def test_trmean_keeps_precision_next_to_huge_outliers():
    x = torch.tensor([[1e30], [1.0], [2.0], [3.0], [-1e30]], dtype=torch.float32)
    assert aggregators.get("trmean")(x, 1).item() == 2.0


def test_mda_too_many_subsets_is_a_clear_error():
    from experiments.tools import UserException
    with pytest.raises(UserException, match="max_subsets"):
        aggregators.get("mda")(torch.zeros(60, 3), 20)
    assert aggregators.get("mda(max_subsets=10)").check(5, 1) is None


def test_geomed_matches_a_direct_weiszfeld():
    x = torch.randn(9, 30, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    z = x.mean(0)
    for _ in range(2000):
        w = 1 / (x - z).norm(dim=1)
        z = (w[:, None] * x).sum(0) / w.sum()
    out = aggregators.get("geomed(tol=1e-12, nu=1e-12, max_iter=2000)")(x, 2)
    torch.testing.assert_close(out, z, rtol=1e-6, atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), d=st.integers(1, 9), seed=st.integers(0, 2**16), kind=st.sampled_from(["real", "ties", "special"]))
def test_sorting_network_equals_torch_sort(n, d, seed, kind):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) if kind != "ties" else torch.randint(0, 3, (n, d), generator=g).float()
    if kind == "special":
        x[torch.rand(n, d, generator=g) < 0.2] = math.nan
        x[torch.rand(n, d, generator=g) < 0.2] = math.inf
        x[torch.rand(n, d, generator=g) < 0.2] = -math.inf
    torch.testing.assert_close(sort_rows(x), x.sort(dim=0).values, rtol=0, atol=0, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), seed=st.integers(0, 2**16), data=st.data())
def test_mean_of_closest_window_equals_brute_force(n, seed, data):
    k = data.draw(st.integers(1, n))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    centre = torch.randn(5, generator=g, dtype=torch.float64)
    out = sorted_mean_of_closest(sort_rows(x), centre, k)
    for column in range(5):
        values = sorted(x[:, column].tolist(), key=lambda v: abs(v - centre[column].item()))[:k]
        assert out[column].item() == pytest.approx(sum(values) / k)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), seed=st.integers(0, 2**16), data=st.data())
def test_pruned_network_selects_the_wanted_positions(n, seed, data):
    low = data.draw(st.integers(0, n - 1))
    wanted = range(low, data.draw(st.integers(low + 1, n)))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    x[torch.rand(n, 6, generator=g) < 0.1] = math.nan
    expected = x.sort(dim=0).values[wanted.start:wanted.stop]
    torch.testing.assert_close(sorted_rows(x, wanted), expected, rtol=0, atol=0, equal_nan=True)


# Columns: one NaN among five (f = 1), none, two infinities (more than f), nothing finite.
MISSING = torch.tensor([[1.0, 1.0, math.inf, math.nan], [2.0, 2.0, -math.inf, math.inf], [3.0, 3.0, 1.0, math.nan],
                        [math.nan, 4.0, 2.0, -math.inf], [100.0, 100.0, 3.0, math.nan]])


@pytest.mark.parametrize("spec, expected", [
    # one missing: f drops to 0 over the 4 finite values; none: as ever; two missing (> f): f = 0 over 3
    ("median", [2.5, 3.0, 2.0, math.nan]),
    ("trmean", [26.5, 3.0, 2.0, math.nan]),      # (1 + 2 + 3 + 100) / 4; (2 + 3 + 4) / 3
    ("meamed", [26.5, 2.5, 2.0, math.nan]),      # the n' - f' = 4 values closest to 2.5: all of them
    ("phocas", [26.5, 2.5, 2.0, math.nan]),
])
def test_a_non_finite_value_is_missing_and_f_shrinks_by_the_values_dropped(spec, expected):
    torch.testing.assert_close(aggregators.get(spec)(MISSING, 1), torch.tensor(expected), equal_nan=True)
