"""Each rule on a small example whose answer can be checked by hand."""
import math

import pytest
import torch

import aggregators


def agg(spec, rows, f, **params):
    return aggregators.get(spec, **params)(torch.tensor(rows, dtype=torch.float64), f)


def test_average_is_the_mean():
    assert agg("average", [[1.0, 2.0], [3.0, 6.0]], 0).tolist() == [2.0, 4.0]


def test_median_odd_and_even():
    assert agg("median", [[1.0], [5.0], [2.0]], 1).tolist() == [2.0]
    assert agg("median", [[1.0], [5.0], [2.0], [4.0]], 1).tolist() == [3.0]  # (2 + 4) / 2
    assert agg("median", [[1.0], [2.0], [2.0], [9.0]], 1).tolist() == [2.0]  # tie in the middle


def test_trmean_drops_f_on_each_side():
    rows = [[1.0, 10.0], [2.0, -50.0], [3.0, 20.0], [100.0, 30.0], [4.0, 40.0]]
    assert agg("trmean", rows, 1).tolist() == [3.0, 20.0]  # (2+3+4)/3, (10+20+30)/3
    assert agg("trmean", rows, 0).tolist() == pytest.approx(torch.tensor(rows).mean(0).tolist())


def test_krum_picks_the_centre_of_the_honest_cluster():
    # 3 neighbours: 0.0, 0.05 and -0.05 tie at 0.015; with a 4th neighbour 0.0 wins (0.025 vs 0.0375)
    rows = [[0.0], [0.1], [-0.1], [0.05], [-0.05], [100.0], [100.0]]
    assert agg("krum", rows, 2).tolist() == [0.0]


def test_multikrum_averages_the_m_best():
    rows = [[0.0], [0.1], [-0.1], [0.05], [-0.05], [100.0], [100.0]]
    assert agg("multikrum", rows, 2, m=3).item() == pytest.approx(0.0)  # 0, 0.05, -0.05
    assert agg("multikrum", rows, 2).item() == pytest.approx(0.0)  # m = n - f = 5: the honest five


def test_bulyan_on_seven_vectors_with_one_byzantine():
    # n = 7, f = 1: theta = 5 picked by Krum, beta = 3 averaged around the median, per coordinate.
    # Rounds (4, 3, 2, 1, 1 neighbours) pick .11 (score .1542), 0 (.1529), .24 (.1538), then -.13
    # (tied with -.28 at .0225, wins with 2 neighbours), then .37 (tied with -.28, wins with 2).
    # Median of {-.13, 0, .11, .24, .37} is .11; the three closest: 0, .11, .24.
    rows = [[0.0], [0.11], [-0.13], [0.24], [-0.28], [0.37], [50.0]]
    assert agg("bulyan", rows, 1).item() == pytest.approx((0.0 + 0.11 + 0.24) / 3)


def test_geomed_of_a_symmetric_cross_is_its_centre():
    rows = [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [0.0, 0.0]]
    assert agg("geomed", rows, 1).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)


def test_geomed_of_three_collinear_points_is_the_middle_one():
    out = agg("geomed", [[0.0], [1.0], [10.0]], 1, tol=1e-12, nu=1e-12, max_iter=1000)
    assert out.item() == pytest.approx(1.0, abs=1e-4)


def test_cclip_one_iteration_by_hand():
    # centre 0, tau 1: (3, 0) clipped to (1, 0); (0, 0.5) kept; mean = (0.5, 0.25)
    rule = aggregators.get("cclip", tau=1.0)
    out = rule(torch.tensor([[3.0, 0.0], [0.0, 0.5]], dtype=torch.float64), 0)
    assert out.tolist() == pytest.approx([0.5, 0.25])
    # next call is centred on (0.5, 0.25): (0.5, 0.25) itself contributes nothing
    out = rule(torch.tensor([[0.5, 0.25], [0.5, 0.25]], dtype=torch.float64), 0)
    assert out.tolist() == pytest.approx([0.5, 0.25])


def test_mda_keeps_the_tightest_subset():
    rows = [[0.0], [1.0], [2.0], [10.0]]  # drop one: {0,1,2} has diameter 4 (squared), the smallest
    assert agg("mda", rows, 1).item() == pytest.approx(1.0)


def test_meamed_mean_of_values_closest_to_median():
    rows = [[0.0], [1.0], [2.0], [3.0], [100.0]]  # median 2, closest 4: 0..3 -> 1.5
    assert agg("meamed", rows, 1).item() == pytest.approx(1.5)


def test_phocas_mean_of_values_closest_to_trimmed_mean():
    rows = [[0.0], [1.0], [2.0], [3.0], [100.0]]  # trmean(f=1) = 2, closest 4: 0..3 -> 1.5
    assert agg("phocas", rows, 1).item() == pytest.approx(1.5)


def test_cge_keeps_the_smallest_norms():
    rows = [[1.0, 0.0], [0.0, 2.0], [30.0, 0.0], [0.0, -3.0], [0.0, 0.5]]
    assert agg("cge", rows, 1).tolist() == pytest.approx([0.25, -0.125])  # drops (30, 0)


def test_monna_mean_of_the_trusted_vectors_neighbours():
    rows = [[0.0], [1.0], [-2.0], [5.0], [9.0]]
    assert agg("monna", rows, 2).item() == pytest.approx(-1 / 3)  # 0, 1, -2
    assert agg("monna", rows, 2, trusted=4).item() == pytest.approx(5.0)  # 9, 5, 1


def test_dnc_removes_the_outlier_along_the_main_direction():
    rows = [[0.0, 0.0], [0.1, -0.1], [-0.1, 0.1], [0.1, 0.1], [20.0, 20.0]]
    assert agg("dnc", rows, 1).tolist() == pytest.approx([0.025, 0.025])


def test_nnm_by_hand():
    # n = 3, f = 1: each vector becomes the mean of itself and its nearest neighbour
    x = torch.tensor([[0.0], [1.0], [5.0]], dtype=torch.float64)
    step = aggregators.get("nnm>average").steps[0]
    assert step.transform(x, 1).flatten().tolist() == [0.5, 0.5, 3.0]


def test_bucketing_averages_buckets_and_reports_sizes():
    rule = aggregators.get("bucketing(s=2)>average")
    step = rule.steps[0]
    assert step.output_size(5, 2) == (3, 2)
    assert step.output_size(5, 4) == (3, 3)
    x = torch.arange(5, dtype=torch.float64)[:, None]
    out = step.transform(x, 1).flatten()
    assert out.shape == (3,) and out.sum().item() * 2 - out[-1].item() == pytest.approx(10.0)
    fresh = aggregators.get("bucketing(s=2)>average")
    assert fresh(x, 1).item() == pytest.approx(out.mean().item())  # same default seed, same buckets


def test_clip_scales_long_vectors_only():
    x = torch.tensor([[3.0, 4.0], [0.3, 0.4]], dtype=torch.float64)
    out = aggregators.get("clip(tau=1)>average").steps[0].transform(x, 0)
    assert out.flatten().tolist() == pytest.approx([0.6, 0.8, 0.3, 0.4])


def test_arc_clips_the_k_largest_to_the_next_norm():
    # n = 5, f = 1: k = floor(2 * 1/5 * 4) = 1; the largest (norm 10) is clipped to norm 3
    x = torch.tensor([[10.0], [1.0], [-2.0], [3.0], [0.5]], dtype=torch.float64)
    out = aggregators.get("arc>average").steps[0].transform(x, 1)
    assert out.flatten().tolist() == pytest.approx([3.0, 1.0, -2.0, 3.0, 0.5])
    assert torch.equal(aggregators.get("arc>average").steps[0].transform(x, 0), x)


def test_chain_nnm_then_krum():
    rows = [[0.0], [0.1], [-0.1], [0.05], [-0.05], [100.0], [100.0]]
    out = agg("nnm>krum", rows, 2)
    assert math.isfinite(out.item()) and abs(out.item()) < 0.1
