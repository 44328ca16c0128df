"""Fang et al. (USENIX Security 2020): the attack on Krum and the attack on the trimmed mean / median."""
import math

import pytest
import torch

import aggregators
import attacks
from attacks.base import AttackContext
from attacks.fang import krum_search, trim_intervals
from experiments.tools import UserException


def context(n, f, seed=0, own=None, decl_f=None):
    return AttackContext(nb_workers=n, decl_f=f if decl_f is None else decl_f, aggregator=None,
                         generator=torch.Generator().manual_seed(seed), own_gradients=own)


def column(*values):
    return torch.tensor(values, dtype=torch.float64)[:, None]


# The attack on Krum ----------------------------------------------------------------------------------

def test_krum_search_by_hand():
    # Honest 1-d vectors -2, -1, 1, 2, 6 (mean 1.2 > 0, so the crafted vector is -lambda); n = 7, f = 2.
    # Theorem 1: plain distances to the n - f - 2 = 3 nearest honest ones sum to 8, 6, 6, 8, 16 -> min 6,
    # over (n - 2f - 1) sqrt(d) = 2, plus max |v_i| = 6: lambda_max = 9.
    # Krum (squared distances, 3 neighbours) with two copies of -lambda:
    #   lambda = 9:     crafted 0 + 7^2 + 8^2 = 113;             honest 1: 1 + 4 + 9 = 14        -> no
    #   lambda = 4.5:   crafted 0 + 2.5^2 + 3.5^2 = 18.5;        honest -2: 1 + 6.25 + 6.25 = 13.5 -> no
    #   lambda = 2.25:  crafted 0 + 0.25^2 + 1.25^2 = 1.625;     honest -2: 0.0625 * 2 + 1 = 1.125 -> no
    #   lambda = 1.125: crafted 0 + 0.125^2 + 0.875^2 = 0.78125; honest -1: 0.015625 * 2 + 1 = 1.03125 -> yes
    honest = column(-2, -1, 1, 2, 6)
    lam, selected, sign = krum_search(honest, 2, 7, 2, 1e-5)
    assert lam == 1.125 and selected and sign.tolist() == [1.0]
    attack = attacks.get("fang-krum(spread=0)")
    byzantine = attack(honest, 2, context(7, 2))
    assert byzantine.flatten().tolist() == [-1.125, -1.125] and attack.last_lambda == 1.125
    assert aggregators.get("krum")(torch.cat([honest, byzantine]), 2).item() == -1.125


def test_krum_search_ends_at_the_floor_when_krum_never_selects():
    # 0, 1, 2, 3, 8: lambda_max = (min 1 + 1 + 2 = 4) / 2 + 8 = 10; no halving down to 1e-5 wins.
    lam, selected, _ = krum_search(column(0, 1, 2, 3, 8), 2, 7, 2, 1e-5)
    assert not selected and lam == 10 / 2 ** 19 and 1e-5 <= lam < 2e-5


@pytest.mark.parametrize("seed", range(20))
def test_the_simulated_selection_is_krums(seed):
    g = torch.Generator().manual_seed(seed)
    h, f, d = 6 + seed % 7, 1 + seed % 3, 1 + seed % 5
    honest = torch.randn(h, d, generator=g, dtype=torch.float64) * (0.2 + seed % 4) + torch.randn(d, generator=g)
    attack = attacks.get("fang-krum(spread=0)")
    byzantine = attack(honest, f, context(h + f, f))
    out = aggregators.get("krum")(torch.cat([honest, byzantine]), f)
    assert attack.last_selected == torch.equal(out, byzantine[0])


def test_the_other_byzantine_vectors_lie_within_spread_over_d():
    honest = torch.randn(10, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 1
    attack = attacks.get("fang-krum")
    out = attack(honest, 3, context(13, 3))
    assert bool((honest.mean(0) > 0).all())
    assert torch.equal(out[0], torch.full((4,), -attack.last_lambda, dtype=torch.float64))  # -lambda sign(mean)
    offset = (out[1:] - out[0]).abs()
    assert bool((offset <= 1e-5 / 4).all()) and bool((offset > 0).all())


def test_partial_knowledge_reads_only_the_attackers_own_vectors():
    own = column(1, 2, 4).repeat(1, 2)
    a = attacks.get("fang-krum(knowledge=partial,spread=0)")
    out = a(torch.randn(7, 2, dtype=torch.float64), 3, context(10, 3, own=own))
    again = a(torch.randn(7, 2, dtype=torch.float64) * 5, 3, context(10, 3, own=own))
    assert torch.equal(out, again)
    # Bound over the own vectors 1, 2, 4 (d = 2, coordinates equal): the nearest min(n - f - 2, f - 1) = 2 others
    # sum to |1-2| + |1-4| = 4, 1 + 2 = 3, 2 + 3 = 5 times sqrt 2 -> 3 sqrt 2 / ((10 - 7) sqrt 2) = 1; largest
    # norm 4 sqrt 2 / sqrt 2 = 4: lambda = 5, and the three copies score 0 in Krum over the six vectors.
    assert a.last_lambda == pytest.approx(5.0) and a.last_selected
    torch.testing.assert_close(out, torch.full((3, 2), -5.0, dtype=torch.float64))


def test_fang_krum_moves_krum_further_than_alie():
    # Noisy gradients (coordinate means 0.5, std 1): the reversed direction sits inside the honest cloud.
    honest = 0.5 + torch.randn(20, 10, generator=torch.Generator().manual_seed(0))
    krum, attack = aggregators.get("krum"), attacks.get("fang-krum")
    mean = honest.mean(0)
    damage = {spec: (krum(torch.cat([honest, attacks.get(spec)(honest, 5, context(25, 5))]), 5) - mean).norm().item()
              for spec in ("fang-krum", "alie")}
    assert damage["fang-krum"] > 1.5 * damage["alie"], damage
    byzantine = attack(honest, 5, context(25, 5))
    out = krum(torch.cat([honest, byzantine]), 5)
    assert attack.last_selected and bool((byzantine == out).all(dim=1).any())  # the crafted vector or a copy


# The attack on the trimmed mean and the median -------------------------------------------------------

def test_full_knowledge_intervals_by_hand():
    # Columns (honest rows 1..3): mean > 0 with min > 0 -> [min/2, min]; mean > 0, min <= 0 -> [2 min, min];
    # mean < 0, max <= 0 -> [max, max/2]; mean < 0, max > 0 -> [max, 2 max]; mean 0 -> 0.
    honest = torch.tensor([[1., -1, -3, -3, -1], [2, 2, -2, 1, 0], [3, 3, -1, 0, 1]], dtype=torch.float64)
    low, high = trim_intervals(honest, "full", 2.0)
    assert low.tolist() == [0.5, -2, -1, 1, 0] and high.tolist() == [1, -1, -0.5, 2, 0]
    low, high = trim_intervals(honest, "full", 3.0)
    assert low.tolist() == [1 / 3, -3, -1, 1, 0] and high.tolist() == [1, -1, -1 / 3, 3, 0]


def test_partial_knowledge_intervals_by_hand():
    # Own columns [1, 3]: mu 2, sigma 1 (divided by f) -> [mu - 4 sigma, mu - 3 sigma] = [-2, -1];
    # [-1, -3]: mu -2 -> [1, 2]; [1, -1]: mu 0 -> [0, 0].
    own = torch.tensor([[1., -1, 1], [3, -3, -1]])
    low, high = trim_intervals(own, "partial")
    assert low.tolist() == [-2, 1, 0] and high.tolist() == [-1, 2, 0]


@pytest.mark.parametrize("knowledge", ["full", "partial"])
def test_trim_draws_fill_the_intervals_independently_per_worker(knowledge):
    honest = torch.tensor([[1., -1, -3, -3], [2, 2, -2, 1], [3, 3, -1, 0]])
    own = torch.tensor([[1., -1, 1, 2], [3, -3, -1, 4]])
    attack = attacks.get(f"fang-trim(knowledge={knowledge})")
    out = attack(honest, 400, context(403, 400, seed=3, own=own.repeat(200, 1)))
    low, high = trim_intervals(honest if knowledge == "full" else own.repeat(200, 1), knowledge)
    assert bool(((out >= low) & (out <= high)).all())
    width = high - low
    assert bool((out.amin(0) - low <= 0.02 * width).all()) and bool((high - out.amax(0) <= 0.02 * width).all())
    assert out.unique(dim=0).shape[0] == 400
    assert torch.equal(out, attack(honest, 400, context(403, 400, seed=3, own=own.repeat(200, 1))))


@pytest.mark.parametrize("rule", ["trmean", "median"])
def test_fang_trim_moves_the_coordinatewise_rules_further_than_alie(rule):
    honest = 0.5 + torch.randn(20, 10, generator=torch.Generator().manual_seed(0))
    agg = aggregators.get(rule)
    mean = honest.mean(0)
    # Every coordinate's mean is > 0, so both attacks push every coordinate down: Fang's values lie below
    # all honest ones, ALIE's at mean - z std, so Fang's move each coordinate at least as far.
    assert bool((mean > 0).all())
    damage = {spec: (agg(torch.cat([honest, attacks.get(spec)(honest, 5, context(25, 5))]), 5) - mean).norm().item()
              for spec in ("fang-trim", "alie")}
    assert damage["fang-trim"] > damage["alie"], damage


# Parameters and inputs -------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, message", [
    ("fang-krum(threshold=0)", "threshold > 0"), ("fang-krum(threshold=inf)", "threshold > 0"),
    ("fang-krum(spread=-1)", "spread >= 0"), ("fang-trim(b=1)", "b > 1"), ("fang-trim(b=inf)", "b > 1"),
    ("fang-trim(knowledge=some)", "knowledge"), ("fang-krum(lambda=1)", "no parameter"),
])
def test_bad_parameters_are_one_line_user_errors(spec, message):
    with pytest.raises(UserException, match=message) as caught:
        attacks.get(spec)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["fang-krum", "fang-trim"])
def test_full_knowledge_needs_an_honest_worker_and_partial_does_not(name):
    with pytest.raises(UserException, match="at least one honest worker"):
        attacks.get(name)(torch.zeros(0, 3), 2, context(2, 2))
    own = torch.tensor([[1.0, 2, 3], [2, 3, 5]])
    out = attacks.get(f"{name}(knowledge=partial)")(torch.zeros(0, 3), 2, context(2, 2, own=own))
    assert out.shape == (2, 3) and bool(torch.isfinite(out).all())


def test_specs_round_trip():
    for spec in ("fang-krum", "fang-krum(knowledge=partial)", "fang-trim(b=3.0)", "fang-trim(knowledge=partial)"):
        assert attacks.get(spec).spec == spec
    assert attacks.get("fang-krum").canonical.startswith("fang-krum(knowledge=full,threshold=1e-05,spread=1e-05")
    assert math.isclose(attacks.get("fang-trim").b, 2.0)
