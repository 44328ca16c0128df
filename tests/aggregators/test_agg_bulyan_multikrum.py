"""Bulyan over Multi-Krum (ByzantineMomentum's `aggregators/bulyan.py`) on examples checked by hand."""
import pytest
import torch

import aggregators
from simulator import Config

# n = 7, f = 1: m = n - f - 2 = 4 neighbours and averaged vectors, n - 2f - 2 = 3 selections, beta = 3 - 2 = 1.
# One coordinate; plain distances; each score is the sum of the 4 smallest distances to the others:
#   0: 1 + 2 + 3.5 + 4.2 = 10.7     1: 1 + 1 + 2.5 + 3.2 = 7.7     2: 2 + 1 + 1.5 + 2.2 = 6.7
#   3.5: 3.5 + 2.5 + 1.5 + 0.7 = 8.2   4.2: 4.2 + 3.2 + 2.2 + 0.7 = 10.3   10: 29.3   20: 79.3
# By score: 2, 1, 3.5, 4.2, 0, 10, 20. Selection i averages ranks i .. 3:
#   (2 + 1 + 3.5 + 4.2) / 4 = 2.675,  (1 + 3.5 + 4.2) / 3 = 2.9,  (3.5 + 4.2) / 2 = 3.85,
# and the coordinate-wise phase keeps the beta = 1 value closest to their median: 2.9.
ROWS = [[0.0], [1.0], [2.0], [3.5], [4.2], [10.0], [20.0]]


def agg(spec, rows, f):
    return aggregators.get(spec)(torch.tensor(rows, dtype=torch.float64), f)


def test_selections_are_suffix_averages_of_the_multikrum_ranking():
    from aggregators.rules.bulyan import multikrum_selections
    x = torch.tensor(ROWS, dtype=torch.float64)
    dist = (x - x.T).abs()
    assert multikrum_selections(x, dist, 1).flatten().tolist() == pytest.approx([2.675, 2.9, 3.85])


def test_bulyan_over_multikrum_by_hand():
    assert agg("bulyan(selection=multikrum)", ROWS, 1).item() == pytest.approx(2.9)


def test_the_papers_bulyan_differs_here():
    # Krum selection: theta = n - 2f = 5 picks one at a time (2, 1, 3.5, then 4.2 and 0 or the like),
    # the 3 values closest to their median averaged: not 2.9.
    assert agg("bulyan", ROWS, 1).item() != pytest.approx(2.9)


def test_two_coordinates_are_phased_separately():
    # A second coordinate that reverses the first: the ranking is by plain distances over both coordinates.
    x = torch.tensor([[v, -v] for (v,) in ROWS], dtype=torch.float64)
    out = aggregators.get("bulyan(selection=multikrum)")(x, 1)
    assert out.tolist() == pytest.approx([2.9, -2.9])


def test_requirement_is_bulyans():
    with pytest.raises(Exception, match="4f"):
        aggregators.get("bulyan(selection=multikrum)").check(6, 1)


def test_runs_made_before_the_option_keep_their_ids():
    plain = Config(aggregator="bulyan", nb_workers=11, nb_decl_byz=2)
    assert Config(aggregator="bulyan(selection=krum)", nb_workers=11, nb_decl_byz=2).run_id() == plain.run_id()
    assert Config(aggregator="bulyan(selection=multikrum)", nb_workers=11, nb_decl_byz=2).run_id() != plain.run_id()
