"""Every registered aggregator step and attack checks its parameter ranges at construction (`Plugin.need`)."""
import math
import typing

import pytest

from aggregators.base import REGISTRY as AGGREGATORS
from attacks.base import REGISTRY as ATTACKS
from experiments.tools import UserException

FLOAT_PROBES = (-1.0, 0.0, math.inf, -math.inf, math.nan)  # nan: refused for every float parameter
INT_PROBES = (-1, 0)

# The probe values a parameter accepts on purpose. Any other probe must raise a UserException naming the
# plug-in and the parameter, so a new numeric parameter refuses them all unless it is listed here.
ACCEPTED = {
    ("cclip", "tau"): {math.inf}, ("clip", "tau"): {math.inf},  # no clipping
    ("clippedclustering", "max_tau"): {math.inf},  # no cap on the median norm
    ("signguard", "lower"): {0.0}, ("signguard", "upper"): {math.inf},  # that side of the norm filter off
    ("dnc", "c"): {0.0},  # keep every vector
    ("flame", "noise"): {0.0}, ("normclip", "sigma"): {0.0}, ("crfl", "sigma"): {0.0},  # no noise
    ("normclip", "norm"): {math.inf}, ("crfl", "rho"): {math.inf}, ("crfl", "start"): {math.inf},  # no clipping
    ("crfl", "growth"): {0.0},  # a constant threshold
    ("geomed", "nu"): {0.0}, ("geomed", "tol"): {0.0},  # no smoothing; exactly max_iter iterations
    ("monna", "trusted"): {0}, ("mimic", "worker"): {0},  # row indices
    ("alie", "z"): {-1.0, 0.0},  # a negative z adds the std (ByzFL's convention)
    ("gaussian", "mean"): {-1.0, 0.0}, ("gaussian", "std"): {0.0}, ("ipm", "epsilon"): {0.0},
    ("opt-alie", "start"): {0.0}, ("opt-ipm", "start"): {0.0},
    ("badnets", "target"): {0}, ("badnets", "row"): {0}, ("badnets", "column"): {0},  # classes, pixel indices
    ("badnets", "value"): {0.0}, ("dba", "value"): {0.0},  # a black trigger
    ("dba", "target"): {0}, ("dba", "gap"): {0}, ("dba", "shift"): {0},
    ("targetflip", "source"): {0}, ("targetflip", "target"): {0}, ("edgecase", "source"): {0},
    ("edgecase", "target"): {0},
    ("fang-krum", "spread"): {0.0},  # exact copies of the crafted vector
    ("dissensus", "epsilon"): {0.0},  # send each target its own model: no pull
    **{(name, key): {0} for name in ("model-replacement", "neurotoxin") for key in ("target", "row", "column")},
    ("model-replacement", "value"): {0.0}, ("neurotoxin", "value"): {0.0},  # BadNets' trigger, as badnets
    ("neurotoxin", "ratio"): {0.0},  # no coordinate excluded
}
SCHEDULE_ACCEPTED = {"begin": {0}}  # every attack's schedule may begin at step 0
ENTRIES = [(registry, name) for registry in (AGGREGATORS, ATTACKS) for name in registry.names()]


def probes(kind):
    args = typing.get_args(kind) or (kind,)
    return FLOAT_PROBES if float in args else INT_PROBES if int in args else ()


@pytest.mark.parametrize("registry, name", ENTRIES, ids=[f"{r.kind}-{n}" for r, n in ENTRIES])
def test_numeric_parameters_refuse_out_of_range_values_naming_the_plugin(registry, name):
    cls = registry.get(name)
    hints = typing.get_type_hints(cls)
    for key in cls.parameters():
        accepted = set()
        for value in probes(hints[key]):
            try:
                cls(**{key: value})
                accepted.add(value)
            except UserException as err:
                assert repr(name) in str(err) and key in str(err), err
        expected = SCHEDULE_ACCEPTED.get(key, set()) if registry is ATTACKS else set()
        assert accepted == ACCEPTED.get((name, key), expected), (key, accepted)


def test_accepted_values_name_existing_parameters():
    for name, key in ACCEPTED:
        registry = AGGREGATORS if name in AGGREGATORS else ATTACKS
        assert key in registry.get(name).parameters(), (name, key)
