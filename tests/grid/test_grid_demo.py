"""The demo grid tells the rules apart (slow: the whole `make demo` grid, about 20 seconds)."""
from pathlib import Path

import pytest

from simulator.grid import load_grids, run_grid
from simulator.report import load, summarise, worst_cases

DEMO = Path(__file__).parents[2] / "examples" / "demo.toml"


@pytest.mark.slow
def test_the_demo_shows_a_robust_rule_falling_and_another_holding(tmp_path):
    (grid,) = load_grids(DEMO).values()
    assert run_grid(grid, tmp_path, jobs=2, progress=False).failed == 0
    cases = {case.aggregator: case for case in worst_cases(summarise(load(tmp_path)), "final")}
    robust = {name: case for name, case in cases.items() if name != "average"}
    assert any(case.drop >= 0.20 for case in robust.values())  # a robust rule loses 20 points or more
    assert any(case.drop <= 0.05 for case in robust.values())  # another stays within 5 points
