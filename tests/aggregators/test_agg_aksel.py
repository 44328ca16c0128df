"""Aksel (ByzantineMomentum's `aggregators/aksel.py`) on examples checked by hand."""
import math

import pytest
import torch

import aggregators
from experiments.tools import UserException

# Five vectors: the coordinate-wise median is (0, 1) (column 0: -1 0 0 1 3; column 1: 0 0 1 2 3).
# Squared distances to it: (0, 0) 1, (1, 0) 2, (0, 2) 1, (3, 3) 13, (-1, 1) 1.
ROWS = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 1.0]]


def agg(spec, rows, f, **params):
    return aggregators.get(spec, **params)(torch.tensor(rows, dtype=torch.float64), f)


def test_mid_averages_the_half_closest_to_the_median():
    # c = (5 + 1) // 2 = 3: the three at distance 1, (0, 0), (0, 2), (-1, 1).
    assert agg("aksel", ROWS, 1).tolist() == pytest.approx([-1 / 3, 1.0])
    assert aggregators.get("aksel").spec == "aksel"  # mid is the default, as in the original


def test_n_minus_f_averages_the_n_minus_f_closest():
    # c = 5 - 1 = 4: the three at distance 1 and (1, 0) at distance 2; sum (0, 3).
    assert agg("aksel", ROWS, 1, mode="n-f").tolist() == pytest.approx([0.0, 0.75])
    assert agg("aksel(mode=n-f)", ROWS, 1).tolist() == pytest.approx([0.0, 0.75])
    # f = 2: c = 3, as mid.
    assert agg("aksel(mode=n-f)", ROWS, 2).tolist() == pytest.approx([-1 / 3, 1.0])


def test_f_zero_with_n_minus_f_is_the_mean():
    assert agg("aksel(mode=n-f)", ROWS, 0).tolist() == pytest.approx([0.6, 1.2])


def test_requires_an_honest_majority():
    aggregators.get("aksel").check(5, 2)
    with pytest.raises(UserException, match=r"n >= 2f \+ 1"):
        aggregators.get("aksel").check(4, 2)
    with pytest.raises(UserException):
        aggregators.get("aksel", mode="all")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("mode", ["mid", "n-f"])
def test_a_non_finite_vector_is_never_chosen(bad, mode):
    # (3, 3) becomes (bad, 3): the median of column 0 is taken over the four finite values
    # -1 0 0 1 with f = 0, i.e. 0; column 1 is unchanged. The chosen rows are as before.
    rows = [r[:] for r in ROWS]
    rows[3][0] = bad
    expected = [-1 / 3, 1.0] if mode == "mid" else [0.0, 0.75]
    assert agg("aksel", rows, 1, mode=mode).tolist() == pytest.approx(expected)


def test_float32_and_permutation():
    x = torch.tensor(ROWS)
    out = aggregators.get("aksel")(x[[4, 2, 0, 3, 1]], 1)
    assert out.dtype == torch.float32 and out.tolist() == pytest.approx([-1 / 3, 1.0])


def test_vectors_tied_at_the_last_place_share_it():
    # n = 2: the median is the midpoint, both vectors are at distance 1; c = 1 place, half each.
    assert agg("aksel", [[0.0, 0.0], [2.0, 0.0]], 0).tolist() == [1.0, 0.0]
    # Median (0, 0) of (2, 0), (-2, 0), (0, 1), (0, -3), (0, 0): distances 4, 4, 1, 9, 0.
    # mid, c = 3: (0, 0), (0, 1), and (2, 0), (-2, 0) tied for the last place, half each:
    # ((0, 0) + (0, 1) + (2, 0) / 2 + (-2, 0) / 2) / 3 = (0, 1/3), whatever the order of the rows.
    rows = [[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -3.0], [0.0, 0.0]]
    assert agg("aksel", rows, 1).tolist() == pytest.approx([0.0, 1 / 3])
    assert agg("aksel", rows[::-1], 1).tolist() == pytest.approx([0.0, 1 / 3])
