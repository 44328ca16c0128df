"""Hand-made result groups for the studies' tests: ``group(aggregator, attack, curves, seeds=None, **identity)``."""
import numpy as np
import pytest

import aggregators
import attacks
from simulator.report.load import Group
from simulator.report.stats import Summary, mean_ci, per_seed


def make_group(aggregator, attack, curves, seeds=None, **identity) -> Summary:
    """A summary of hand-made accuracy curves, [seeds, evaluations] (a flat list: one evaluation a seed, a number:
    one seed), summarised as the report does."""
    accuracy = np.asarray(curves, dtype=float)
    accuracy = accuracy.reshape(1, 1) if accuracy.ndim == 0 else accuracy[:, None] if accuracy.ndim == 1 else accuracy
    seeds = tuple(seeds or range(1, len(accuracy) + 1))
    full = {"aggregator": aggregators.get(aggregator).identity, "attack": attacks.get(attack).identity, **identity}
    g = Group(aggregator=aggregator, attack=attack, setting=(), identity=full, seeds=seeds,
              steps=np.arange(accuracy.shape[1]), accuracy=accuracy, val_accuracy=None, metric_steps=np.array([]),
              distance_ratio=np.array([]))
    stats = {m: mean_ci(v) for m, v in per_seed(accuracy).items()}
    return Summary(g, {m: float(s[0]) for m, s in stats.items()}, {m: float(s[1]) for m, s in stats.items()})


@pytest.fixture
def group():
    return make_group
