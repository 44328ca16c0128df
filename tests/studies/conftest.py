"""Hand-made result groups for the studies' tests: ``group(aggregator, attack, curves, seeds=None, asr=None, ...,
**identity)``."""
import numpy as np
import pytest

from simulator.report.load import Group
from simulator.report.stats import Summary, mean_ci, per_seed
from simulator.studies.study import canonical


def _curves(curves) -> np.ndarray:
    """[seeds, evaluations] from a matrix, a flat list (one evaluation a seed) or a number (one seed)."""
    values = np.asarray(curves, dtype=float)
    return values.reshape(1, 1) if values.ndim == 0 else values[:, None] if values.ndim == 1 else values


def _stats(curves: np.ndarray) -> tuple[dict, dict]:
    stats = {m: mean_ci(v) for m, v in per_seed(curves).items()}
    return {m: float(s[0]) for m, s in stats.items()}, {m: float(s[1]) for m, s in stats.items()}


def make_group(aggregator, attack, curves, seeds=None, *, asr=None, robust_accuracy=None, asr_after=None,
               nodes=None, **identity) -> Summary:
    """A summary of hand-made accuracy curves, [seeds, evaluations] (a flat list: one evaluation a seed, a number:
    one seed), summarised as the report does; a targeted attack's ``asr`` and ``robust_accuracy`` curves alike,
    and its durability ``asr_after`` ({k: one value a seed}); a decentralised run's node curves ``nodes``
    ({name: curves}). Specs (aggregator, attack, topology, ...) are kept in the form run identities hold."""
    accuracy = _curves(curves)
    seeds = tuple(seeds or range(1, len(accuracy) + 1))
    full = {k: canonical(k, v) for k, v in {"aggregator": aggregator, "attack": attack, **identity}.items()}
    backdoor = {} if asr is None else {"asr": _curves(asr), "robust_accuracy": _curves(robust_accuracy),
                                       "asr_after": None if asr_after is None else
                                       {k: np.asarray(v, dtype=float) for k, v in asr_after.items()}}
    g = Group(aggregator=aggregator, attack=attack, setting=(), identity=full, seeds=seeds,
              steps=np.arange(accuracy.shape[1]), accuracy=accuracy, val_accuracy=None, metric_steps=np.array([]),
              distance_ratio=np.array([]), nodes=None if nodes is None else
              {k: _curves(v) for k, v in nodes.items()}, **backdoor)
    quantities = {q: _stats(backdoor[q]) for q in ("asr", "robust_accuracy") if q in backdoor}
    return Summary(g, *_stats(accuracy), quantities)


@pytest.fixture
def group():
    return make_group
