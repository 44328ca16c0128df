"""Adaptive ALIE / IPM: the line search, and its damage against median and Krum."""
import pytest
import torch

import aggregators
import attacks
from attacks.adaptive import line_maximize
from attacks.base import AttackContext
from experiments.tools import UserException


class StandIn:
    """A minimal aggregator: ``__call__`` and ``trial`` compute the same rule; counts calls."""

    def __init__(self, rule):
        self.rule, self.calls, self.trials = rule, 0, 0

    def __call__(self, gradients, f):
        self.calls += 1
        return self.rule(gradients, f)

    def trial(self, gradients, f, generator=None):
        self.trials += 1
        return self.rule(gradients, f)


ADAPTIVE = [name for name in attacks.names() if "evals" in attacks.get(name).parameters()]  # line searches


def median(gradients, f):
    return gradients.median(dim=0).values


def krum(gradients, f):
    n = gradients.shape[0]
    dist = torch.cdist(gradients, gradients).square()
    dist.fill_diagonal_(float("inf"))
    scores = dist.topk(n - f - 2, dim=1, largest=False).values.sum(dim=1)
    return gradients[scores.argmin()].clone()


def honest_cloud(seed, h=20, d=50):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(h, d, generator=g, dtype=torch.float64) + 1.0


def damage(aggregator, honest, byzantine, decl_f):
    out = aggregator(torch.cat([honest, byzantine]), decl_f)
    return torch.linalg.vector_norm(out - honest.mean(dim=0)).item()


def test_line_maximize_finds_the_peak_of_a_unimodal_function_within_budget():
    calls = []

    def fn(s):
        calls.append(s)
        return -(s - 3.3) ** 2

    best, value = line_maximize(fn, start=0.5, step=0.5, evals=30)
    assert len(calls) <= 30 and min(calls) >= 0
    assert best == pytest.approx(3.3, abs=0.02) and value == max(fn(s) for s in calls[:-1] + [best])


def test_line_maximize_never_returns_worse_than_its_start():
    best, value = line_maximize(lambda s: -s, start=2.0, step=1.0, evals=5)
    assert value >= -2.0 and best <= 2.0
    assert line_maximize(lambda s: 1.0, start=0.7, step=1.0, evals=1) == (0.7, 1.0)


def test_adaptive_attacks_need_an_aggregator():
    ctx = AttackContext(nb_workers=25, decl_f=5, aggregator=None, generator=None)
    with pytest.raises(UserException, match="aggregator"):
        attacks.get("opt-alie")(honest_cloud(0), 5, ctx)


@pytest.mark.parametrize("name", ADAPTIVE)
def test_adaptive_attacks_only_use_trial_within_the_evaluation_budget(name):
    agg = StandIn(median)
    ctx = AttackContext(nb_workers=25, decl_f=5, aggregator=agg, generator=None)
    honest = honest_cloud(1)
    before = honest.clone()
    out = attacks.get(name, evals=7)(honest, 5, ctx)
    assert out.shape == (5, 50) and torch.equal(honest, before)
    assert agg.calls == 0 and 1 <= agg.trials <= 7


FIXED = {"opt-alie": ("alie", {}), "opt-ipm": ("ipm", {})}  # each adaptive attack and its fixed counterpart


@pytest.mark.parametrize("name", ADAPTIVE)
@pytest.mark.parametrize("rule", [median, krum], ids=["median", "krum"])
@pytest.mark.parametrize("seed", [0, 1])
def test_adaptive_scale_is_at_least_as_damaging_as_the_fixed_attack(name, rule, seed):
    honest, f = honest_cloud(seed), 5
    ctx = AttackContext(nb_workers=25, decl_f=f, aggregator=StandIn(rule), generator=None)
    fixed_name, params = FIXED[name]
    fixed = attacks.get(fixed_name, **params)(honest, f, ctx)
    adaptive = attacks.get(name)(honest, f, ctx)
    assert damage(rule, honest, adaptive, f) >= damage(rule, honest, fixed, f) - 1e-12


def test_adaptive_alie_beats_the_formula_z_against_median():
    honest, f = honest_cloud(3), 5
    ctx = AttackContext(nb_workers=25, decl_f=f, aggregator=StandIn(median), generator=None)
    attack = attacks.get("opt-alie")
    adaptive = attack(honest, f, ctx)
    fixed = attacks.get("alie")(honest, f, ctx)
    assert attack.last_scale > attacks.get("alie").scale(f, ctx)
    assert damage(median, honest, adaptive, f) > damage(median, honest, fixed, f)


def test_adaptive_attacks_see_the_whole_chain_including_pre_aggregation():
    # a chain that clips every vector to norm 1 before the median
    def clipped_median(gradients, f):
        norms = torch.linalg.vector_norm(gradients, dim=1, keepdim=True).clamp(min=1.0)
        return median(gradients / norms, f)

    chain = StandIn(clipped_median)
    honest, f = honest_cloud(4), 5
    ctx = AttackContext(nb_workers=25, decl_f=f, aggregator=chain, generator=None)
    adaptive = attacks.get("opt-ipm")(honest, f, ctx)
    fixed = attacks.get("ipm")(honest, f, ctx)
    assert chain.trials > 0
    assert damage(clipped_median, honest, adaptive, f) >= damage(clipped_median, honest, fixed, f) - 1e-12


@pytest.mark.parametrize("name", ADAPTIVE)
@pytest.mark.parametrize("rule_name", ["median", "krum", "nnm>median", "nnm>krum"])
def test_against_the_real_aggregators(name, rule_name):
    agg = aggregators.get(rule_name)
    honest, f = honest_cloud(5).float(), 5
    ctx = AttackContext(nb_workers=25, decl_f=f, aggregator=agg, generator=None)
    fixed_name, params = FIXED[name]
    fixed = attacks.get(fixed_name, **params)(honest, f, ctx)
    adaptive = attacks.get(name)(honest, f, ctx)
    assert damage(agg.trial, honest, adaptive, f) >= damage(agg.trial, honest, fixed, f) - 1e-5


def _record_randperm(monkeypatch):
    """Every permutation torch.randperm returns from now on, in order."""
    seen, original = [], torch.randperm

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        seen.append(out.clone())
        return out

    monkeypatch.setattr(torch, "randperm", recording)
    return seen


@pytest.mark.parametrize("spec, d", [("bucketing(s=2)>median", 50), ("dnc(b=10)", 50)])
@pytest.mark.parametrize("knows", [False, True])
def test_the_attacker_draws_its_own_randomness_unless_it_knows_the_servers(monkeypatch, spec, d, knows):
    honest, f = honest_cloud(6, d=d).float(), 5
    chain = aggregators.get(spec, generator=torch.Generator().manual_seed(11))
    ctx = AttackContext(nb_workers=25, decl_f=f, aggregator=chain, generator=torch.Generator().manual_seed(3))
    server_state = chain.state_dict()["generator"]
    seen = _record_randperm(monkeypatch)
    byzantine = attacks.get("opt-alie", evals=5, knows_server_rng=knows)(honest, f, ctx)
    tried = list(seen)
    assert torch.equal(chain.state_dict()["generator"], server_state)  # the line search leaves the server alone
    seen.clear()
    chain(torch.cat([honest, byzantine]), f)
    real = seen[0]
    assert len(tried) >= 5
    if knows:  # the worst case: every candidate met the very draws the server then made
        assert all(torch.equal(t, real) for t in tried)
    else:
        assert not any(torch.equal(t, real) for t in tried)
        assert all(torch.equal(t, tried[0]) for t in tried)  # every candidate met the same draws
