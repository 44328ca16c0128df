"""SignGuard and clipped clustering: hand-checked examples, requirement, invariance, state, non-finite input."""
import math

import pytest
import torch

import aggregators
from experiments.tools import UserException


def rows(values):
    return torch.tensor(values, dtype=torch.float64)


def seeded(spec, seed=1):
    return aggregators.get(spec, generator=torch.Generator().manual_seed(seed))


# SignGuard ----------------------------------------------------------------------------

def test_signguard_drops_the_far_vector_by_norm_and_the_opposite_one_by_sign():
    # norms 1, 5, 2, 0.5, 500: median M = 2, norm filter [0.2, 6] drops (-300, -400);
    # signs: the honest rows are all positive, (-0.3, -0.4) all negative: the sign cluster drops it.
    # (3, 4) is clipped to M: (1.2, 1.6). Mean of (0.6, 0.8), (1.2, 1.6), (1.2, 1.6) = (1, 4/3).
    x = rows([[0.6, 0.8], [3.0, 4.0], [1.2, 1.6], [-0.3, -0.4], [-300.0, -400.0]])
    out = aggregators.get("signguard(fraction=1.0)")(x, 2)
    assert out.tolist() == pytest.approx([1.0, 4 / 3])


def test_signguard_norm_filter_drops_a_tiny_vector_with_honest_signs():
    # norms 0.014, sqrt 2, sqrt 5, sqrt 5, sqrt 8: M = sqrt 5, lower bound 0.1 M drops (0.01, 0.01);
    # every sign feature is (1, 0, 0): one cluster. (2, 2) is clipped to norm sqrt 5.
    x = rows([[1.0, 1.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [0.01, 0.01]])
    out = aggregators.get("signguard(fraction=1.0)")(x, 1)
    clipped = 2.0 * math.sqrt(5) / math.sqrt(8)
    assert out.tolist() == pytest.approx([(4 + clipped) / 4] * 2)


def test_signguard_output_lies_in_the_honest_range_against_sign_flipping():
    g = torch.Generator().manual_seed(0)
    honest = 1.0 + 0.1 * torch.randn(12, 200, generator=g, dtype=torch.float64)
    byzantine = -3.0 * honest[:5]
    out = seeded("signguard")(torch.cat([byzantine, honest]), 5)
    assert bool(((out >= honest.min(0).values) & (out <= honest.max(0).values)).all())
    assert (out - honest.mean(0)).norm() < 0.05 * honest.mean(0).norm()


def test_signguard_parameters_are_checked():
    for spec in ("signguard(lower=2.0)", "signguard(upper=0.5)", "signguard(fraction=0)", "signguard(fraction=1.5)"):
        with pytest.raises(UserException):
            aggregators.get(spec)


# Clipped clustering ------------------------------------------------------------------------

HONEST = [[1.0, 0.0], [0.9, 0.1], [1.1, -0.1]]


def test_clippedclustering_keeps_the_larger_cosine_cluster():
    # honest along (1, 0), Byzantine along (0, -1): two clusters of 3 and 2.
    # norms 1, 0.906, 1.105, 5, 6: tau = 1.105, no honest vector is clipped: the honest mean.
    x = rows(HONEST + [[0.0, -5.0], [0.0, -6.0]])
    assert aggregators.get("clippedclustering")(x, 2).tolist() == pytest.approx([1.0, 0.0])


def test_clippedclustering_clips_to_the_median_of_all_norms_seen():
    rule = aggregators.get("clippedclustering")
    rule(rows(HONEST + [[0.0, -5.0], [0.0, -6.0]]), 2)
    second = rows([[10.0, 0.0], [9.0, 1.0], [11.0, -1.0], [0.0, -50.0], [0.0, -60.0]])
    # ten norms seen: 0.906 1 1.105 5 6 | 9.055 10 11.045 50 60 -> tau = (6 + sqrt 82) / 2
    tau = (6 + math.sqrt(82)) / 2
    honest = second[:3]
    expected = (honest * (tau / honest.norm(dim=1, keepdim=True))).mean(0)
    torch.testing.assert_close(rule(second, 2), expected)
    # a fresh rule sees only the second call's norms: tau = 11.045, nothing honest is clipped
    torch.testing.assert_close(aggregators.get("clippedclustering")(second, 2), honest.mean(0))


def test_clippedclustering_threshold_is_capped_by_max_tau():
    x = rows(HONEST + [[0.0, -5.0], [0.0, -6.0]])
    honest = x[:3]
    expected = (honest * (0.5 / honest.norm(dim=1, keepdim=True))).mean(0)
    torch.testing.assert_close(aggregators.get("clippedclustering(max_tau=0.5)")(x, 2), expected)
    with pytest.raises(UserException):
        aggregators.get("clippedclustering(max_tau=0)")


def test_clippedclustering_close_to_the_honest_mean_against_opposite_attackers():
    g = torch.Generator().manual_seed(0)
    honest = 1.0 + 0.1 * torch.randn(12, 200, generator=g, dtype=torch.float64)
    out = aggregators.get("clippedclustering")(torch.cat([honest, -100.0 * honest[:5]]), 5)
    assert bool(((out >= honest.min(0).values) & (out <= honest.max(0).values)).all())
    assert (out - honest.mean(0)).norm() < 0.05 * honest.mean(0).norm()


# Both -------------------------------------------------------------------------------------

BOTH = ["signguard", "clippedclustering"]


@pytest.mark.parametrize("name", BOTH)
def test_requirement_is_an_honest_majority(name):
    rule = aggregators.get(name)
    rule.check(5, 2)
    with pytest.raises(UserException, match=rf"{name} requires n >= 2f \+ 1, got n = 4, f = 2"):
        rule(torch.randn(4, 3, dtype=torch.float64), 2)


@pytest.mark.parametrize("name", BOTH)
@pytest.mark.parametrize("seed", range(4))
def test_permutation_invariance(name, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(11, 40, generator=g, dtype=torch.float64) + torch.linspace(-1, 1, 40, dtype=torch.float64)
    perm = torch.randperm(11, generator=g)
    a = seeded(f"{name}")(x, 3)
    b = seeded(f"{name}")(x[perm], 3)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("spec", ["signguard(fraction=0.5)", "clippedclustering"])
def test_state_roundtrip_reset_and_trial(spec):
    g = torch.Generator().manual_seed(2)
    first, second = torch.randn(9, 30, generator=g), 3 * torch.randn(9, 30, generator=g)
    rule = seeded(spec)
    rule(first, 2)
    saved = rule.state_dict()
    tried = [rule.trial(second, 2) for _ in range(3)]
    after = rule.state_dict()
    assert (after["generator"] is None and saved["generator"] is None) or torch.equal(after["generator"],
                                                                                     saved["generator"])
    assert all(torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
               for a, b in zip(after["steps"][0].values(), saved["steps"][0].values()))
    expected = rule(second, 2)
    assert all(torch.equal(t, expected) for t in tried)
    other = seeded(spec, seed=9)
    other.load_state_dict(saved)
    assert torch.equal(other(second, 2), expected)
    rule.reset()
    assert torch.equal(rule(first, 2), seeded(spec)(first, 2))


@pytest.mark.parametrize("name", BOTH)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_up_to_f_non_finite_vectors_give_a_finite_result(name, dtype):
    g = torch.Generator().manual_seed(3)
    honest = 1.0 + 0.1 * torch.randn(6, 25, generator=g, dtype=dtype)
    bad = torch.randn(5, 25, generator=g, dtype=dtype)
    bad[0, 3] = math.nan
    bad[1] = math.inf
    bad[2, :] = -math.inf
    bad[3, 0] = torch.finfo(dtype).max / 2
    bad[4, ::2] = math.nan
    x = torch.cat([bad[:2], honest[:3], bad[2:], honest[3:]])
    out = seeded(name)(x, 5)
    assert bool(torch.isfinite(out).all()) and out.dtype == dtype
    assert bool(((out >= honest.min(0).values - 1e-6) & (out <= honest.max(0).values + 1e-6)).all())
