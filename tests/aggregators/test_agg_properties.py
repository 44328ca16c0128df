"""Hypothesis property tests: the invariants each rule's definition implies."""
import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import aggregators
from aggregators.base import RoundInfo

SETTINGS = settings(max_examples=25, deadline=None)
RULES = [name for name in aggregators.names() if not aggregators.is_preaggregation(name)]
STEPS = [name for name in aggregators.names() if aggregators.is_preaggregation(name)]


def every(partner, but=(), also=()):
    """Every registered rule, and every pre-aggregation step in front of ``partner``, less ``but``, plus ``also``.

    A new rule or step is tested by default: it leaves a property only by a commented exclusion here.
    """
    specs = RULES + [f"{step}>{partner}" for step in STEPS]
    assert set(but) <= set(specs), set(but) - set(specs)  # no stale exclusion
    return list(dict.fromkeys([s for s in specs if s not in but] + list(also)))


# A rule that asks nothing of (n, f) (average, a step before average) claims no robustness.
ROBUST = [s for s in every("median", also=["nnm>krum", "clip>trmean", "arc>multikrum", "nnm>geomed"])
          if aggregators.get(s).unmet(2, 1) is not None]
PERMUTATION_INVARIANT = every("median", also=["clip>average", "arc>trmean"], but=[
    "monna",              # trusts the worker in row `trusted`
    "bucketing>median",   # buckets follow the rows' order: invariant only in distribution
])
TRANSLATION_EQUIVARIANT = every("median", also=["nnm>krum", "nnm>trmean"], but=[
    # clip norms or signs measured from the origin (or, for cclip, from a centre starting at zero)
    "cclip", "cge", "signguard", "clippedclustering", "clip>median", "arc>median",
    # cosines and norms measured from the origin (and noise): trust against the reference, clusters, histories
    "fltrust", "flame", "foolsgold", "normclip",
    "crfl",  # clips the parameters params - lr * mean, measured from the origin, and adds noise
])
MEAN_WHEN_F_IS_ZERO = every("average", also=["nnm>krum"], but=[
    "median", "krum", "geomed",            # a median or one vector, not the mean
    "aksel",                               # mode=mid: the mean of the (n+1)//2 vectors closest to the median
    "cclip", "clip>average",               # clip at tau
    "signguard", "clippedclustering",      # drop honest vectors by norm, sign or cluster even with f = 0
    "bucketing>average",                   # unequal buckets when s does not divide n weigh rows unequally
    "fltrust",                             # trust-weighted, every vector rescaled to the reference's norm
    "flame", "normclip", "crfl",           # clip (and cluster) and add Gaussian noise
    "foolsgold",                           # weights below 1 for clients less distinct than the most distinct
])


@st.composite
def problems(draw, min_factor=4, extra=3):
    """(n, f, d, seed) with n >= min_factor f + extra, so every rule's requirement holds."""
    f = draw(st.integers(0, 3))
    n = draw(st.integers(min_factor * f + extra, min_factor * f + extra + 6))
    return n, f, draw(st.integers(1, 12)), draw(st.integers(0, 2**16))


def honest_and_byzantine(n, f, d, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n - f, d, generator=g, dtype=dtype), torch.randn(f, d, generator=g, dtype=dtype)


def sample(n, d, seed, dtype=torch.float64):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def needs(spec):
    return 4 if "bulyan" in spec else 2


def told(spec, x):
    """``aggregators.get(spec)`` told the stand-in round of ``x``'s size (`RoundInfo.stand_in`: senders 0..n-1, a
    fixed unit reference, parameters zero): the rules that read the round (fltrust, foolsgold, crfl) need one,
    the others ignore it. Each test builds fresh rules, so foolsgold meets each sender once: its weights follow
    the rows, as a rule's output must."""
    rule = aggregators.get(spec)
    rule.inform(RoundInfo.stand_in(*x.shape))
    return rule


@pytest.mark.parametrize("spec", PERMUTATION_INVARIANT)
@SETTINGS
@given(problem=problems())
def test_permutation_invariance(spec, problem):
    n, f, d, seed = problem
    assume(d > 1 or spec != "clippedclustering")  # with d = 1 every cosine is +-1: exact ties, broken by row
    x = sample(n, d, seed)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))
    a = told(spec, x)(x, f)
    b = told(spec, x)(x[perm], f)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("spec", TRANSLATION_EQUIVARIANT)
@SETTINGS
@given(problem=problems(), shift=st.floats(-50, 50))
def test_translation_equivariance(spec, problem, shift):
    n, f, d, seed = problem
    x = sample(n, d, seed)
    offset = torch.linspace(-1, 1, d, dtype=torch.float64) * shift
    a = told(spec, x)(x, f)
    b = told(spec, x)(x + offset, f)
    torch.testing.assert_close(a + offset, b, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("spec", MEAN_WHEN_F_IS_ZERO)
@SETTINGS
@given(problem=problems())
def test_f_zero_gives_the_mean(spec, problem):
    n, _, d, seed = problem
    x = sample(n, d, seed)
    torch.testing.assert_close(told(spec, x)(x, 0), x.mean(dim=0))


@pytest.mark.parametrize("spec", ["median", "trmean", "meamed", "phocas", "bulyan"])
@SETTINGS
@given(problem=problems(), scale=st.sampled_from([1.0, 1e3, 1e30, math.inf, math.nan]))
def test_coordinatewise_output_stays_within_the_honest_range(spec, problem, scale):
    """Median and trimmed mean: for any f Byzantine values. The rules averaging the values
    closest to a centre (meamed, phocas, bulyan) can step just past the honest range when a
    Byzantine value sits next to it, so for them the Byzantine values are far (|v| >= 1e3)."""
    n, f, d, seed = problem
    if scale == 1.0 and spec not in ("median", "trmean"):
        return
    honest, byz = honest_and_byzantine(n, f, d, seed)
    if math.isnan(scale):
        byz = torch.full_like(byz, math.nan)
    elif scale > 1:
        byz = torch.sign(byz) * (1 + byz.abs()) * scale
    out = aggregators.get(spec)(torch.cat([byz, honest]), f)
    lo, hi = honest.min(dim=0).values, honest.max(dim=0).values
    assert bool(((out >= lo - 1e-9) & (out <= hi + 1e-9)).all())


@pytest.mark.parametrize("spec", ["krum", "multikrum"])
@SETTINGS
@given(problem=problems(min_factor=2), distance=st.sampled_from([1e2, 1e6, 1e30]))
def test_krum_selects_only_honest_vectors_when_byzantine_ones_are_far(spec, problem, distance):
    n, f, d, seed = problem
    honest, byz = honest_and_byzantine(n, f, d, seed)
    out = aggregators.get(spec)(torch.cat([honest, byz + distance]), f)
    if spec == "krum":
        assert bool((honest == out).all(dim=1).any())
    else:
        assert bool(((out >= honest.min(0).values - 1e-9) & (out <= honest.max(0).values + 1e-9)).all())


@pytest.mark.parametrize("spec", ROBUST)
@SETTINGS
@given(problem=problems(), bad=st.sampled_from(["nan", "inf", "-inf", "mixed", "huge"]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_non_finite_byzantine_vectors_give_a_finite_result(spec, problem, bad, dtype):
    n, f, d, seed = problem
    honest, byz = honest_and_byzantine(n, f, d, seed, dtype)
    if f:
        value = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "mixed": math.nan,
                 "huge": torch.finfo(dtype).max / 2}[bad]
        byz[:, 0] = value
        if bad == "mixed":
            byz[::2, -1] = math.inf
    x = torch.cat([honest[:1], byz, honest[1:]])  # monna trusts row 0, an honest one
    out = told(spec, x)(x, f)
    assert bool(torch.isfinite(out).all()), out
    assert out.dtype == dtype and out.shape == (d,)
