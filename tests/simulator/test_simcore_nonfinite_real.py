"""A trivially detectable attack costs no more than sending nothing: NaN and +inf against coordinate-wise rules.

Fashion-MNIST, the 784-100-10 MLP, n = 25 with f = 5, 300 steps, seed 1: the median and the trimmed mean under
NaN and under +inf end within 2 points of their attack-free accuracy (non-finite values are missing values,
docs/aggregators.md). Before, NaN sorted above +inf and was trimmed as an extreme value, which shifted every
coordinate: the median lost 16 points and the trimmed mean 26 here.
"""
from pathlib import Path

import pytest

from simulator import Config, run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                       reason="Debian package dataset-fashion-mnist not installed"),
]


@pytest.mark.parametrize("rule", ["median", "trmean"])
def test_nan_and_inf_cost_the_coordinatewise_rules_under_two_points(tmp_path, rule):
    def accuracy(attack: str) -> float:
        config = Config(dataset="fashionmnist", model="simples-full", nb_workers=25, nb_decl_byz=5, aggregator=rule,
                        attack=attack, steps=300, eval_every=300, lr=0.1, seed=1, engine="grouped",
                        output=str(tmp_path))
        return run(config, progress=False).final_accuracy

    clean = accuracy("none")
    for attack in ("nan", "inf"):
        assert accuracy(attack) > clean - 0.02, attack
