"""End to end on real Fashion-MNIST (Debian's dataset-fashion-mnist); slow."""
from pathlib import Path

import pytest

from simulator import Config, run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                       reason="Debian package dataset-fashion-mnist not installed"),
]


def test_the_cnn_learns_fashion_mnist_under_alie_with_krum(tmp_path):
    result = run(Config(dataset="fashionmnist", nb_workers=11, nb_decl_byz=2, aggregator="krum", attack="alie(z=1.5)",
                        batch_size=32, steps=150, lr=0.05, momentum=0.9,
                        momentum_at="worker", eval_every=150, output=str(tmp_path)), progress=False)
    assert result.summary["engine"] == "grouped"  # the default engine's choice for this CNN on a CPU
    assert result.final_accuracy > 0.6  # chance is 0.1
