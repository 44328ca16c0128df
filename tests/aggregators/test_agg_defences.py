"""Backdoor defences (fltrust, flame, foolsgold, normclip, crfl) by hand, and what a rule may know about the round."""
import dataclasses
import math

import pytest
import torch

import aggregators
from aggregators.base import NEEDS, REGISTRY, RoundInfo
from aggregators.distances import squared_distances, squared_distances_to
from aggregators.rules.clippedclustering import cosine_distances
from aggregators.rules.flame import majority_cluster
from aggregators.rules.foolsgold import foolsgold_weights
from experiments.tools import UserException


def rows(*values):
    return torch.tensor(values, dtype=torch.float64)


def told(spec, **fields):
    rule = aggregators.get(spec)
    rule.inform(RoundInfo(**fields))
    return rule


# ------------------------------------------------------------------ fltrust
def test_fltrust_scores_and_rescaling_by_hand():
    """g_0 = (3, 4), |g_0| = 5. Scores ReLU(cos): 1, 0 (orthogonal), 0 (cos -1), 0.6 (18 / 30); the trusted
    vectors rescaled to norm 5: (3, 4) and (5, 0); output (1 (3, 4) + 0.6 (5, 0)) / 1.6 = (3.75, 2.5)."""
    x = rows([3, 4], [4, -3], [-3, -4], [6, 0])
    out = told("fltrust", reference=rows(3, 4))(x, 1)
    torch.testing.assert_close(out, rows(3.75, 2.5))


def test_fltrust_trusts_no_one_against_its_reference_and_drops_non_finite_vectors():
    assert torch.equal(told("fltrust", reference=rows(3, 4))(rows([4, -3], [-3, -4]), 0), rows(0, 0))
    x = rows([6, 8], [math.nan, 1], [math.inf, 0], [0, 0])  # one trusted vector, rescaled to norm 5
    torch.testing.assert_close(told("fltrust", reference=rows(3, 4))(x, 2), rows(3, 4))


def test_fltrust_declares_its_root_set():
    assert aggregators.get("fltrust").root_set_size() == 100  # the paper's default
    assert aggregators.get("clip>fltrust(root=30)").root_set_size() == 30
    assert aggregators.get("median").root_set_size() == 0
    with pytest.raises(UserException, match="root >= 1"):
        aggregators.get("fltrust(root=0)")


# -------------------------------------------------------------------- flame
FLAME_X = rows([1, 0], [2, 0], [10, 0], [0, 3], [0, -4])


def test_flame_clusters_and_clips_by_hand():
    """Cosine distances: 0 among the three vectors along x, 1 from them to the two along y, 2 between those.
    HDBSCAN with min_cluster_size 5 // 2 + 1 = 3 keeps the three; S = median(1, 2, 10, 3, 4) = 3 clips (10, 0) to
    (3, 0); the mean of (1, 0), (2, 0), (3, 0) is (2, 0)."""
    distance = cosine_distances(squared_distances(FLAME_X), squared_distances_to(FLAME_X))
    kept = majority_cluster(distance, torch.ones(5, dtype=torch.bool))
    assert kept.tolist() == [True, True, True, False, False]
    torch.testing.assert_close(aggregators.get("flame(noise=0)")(FLAME_X, 2), rows(2, 0))


def test_flame_noise_has_std_lambda_times_the_median_norm():
    """lambda = 0.5, S = 3: the noise is N(0, 1.5^2) per coordinate (d = 20,000, fixed seed; a 2% band on the
    std is 4.5 of its standard errors)."""
    d = 20_000
    x = torch.zeros(5, d, dtype=torch.float64)
    x[:, :2] = FLAME_X
    rule = aggregators.get("flame(noise=0.5)", generator=torch.Generator().manual_seed(4))
    first = rule(x, 2)
    noise = first - aggregators.get("flame(noise=0)")(x, 2)
    assert abs(noise.mean().item()) < 0.05
    assert noise.std().item() == pytest.approx(1.5, rel=0.02)
    assert torch.equal(aggregators.get("flame(noise=0.5)", generator=torch.Generator().manual_seed(4))(x, 2), first)
    assert not torch.equal(rule.trial(x, 2), first)  # the next draw of the rule's own generator


def test_flame_admits_nothing_without_a_finite_majority():
    """Two of four vectors non-finite: fewer than 4 // 2 + 1 = 3 can form the cluster, none is admitted (zero)."""
    x = rows([1, 0], [2, 0], [math.nan, 0], [math.inf, 1])
    assert not majority_cluster(cosine_distances(squared_distances(x), squared_distances_to(x)),
                                torch.isfinite(x).all(dim=1)).any()
    assert torch.equal(aggregators.get("flame(noise=0)")(x, 1), rows(0, 0))


# ---------------------------------------------------------------- foolsgold
R7 = math.sqrt(7)
# Sybils 0 and 1 send the same direction; 2, 3, 4 are distinct: cos(2, 3) = sqrt(7)/4, cos(3, 4) = 3/4, cos(2, 4) = 0.
FOOLSGOLD_X = rows([1, 0, 0], [1, 0, 0], [0, 1, 0], [0, R7, 3], [0, 0, 1])
# v = max_j cs_ij: (1, 1, sqrt(7)/4, 3/4, 3/4). Pardoning lowers cs_23 to (7/16) / (3/4) = 7/12 (v_2 < v_3); the
# row maxima become (1, 1, 7/12, 3/4, 3/4), so a = (0, 0, 5/12, 1/4, 1/4), over its largest (0, 0, 1, 0.6, 0.6),
# 1 -> 0.99, and the logit: ln(99) + 0.5 > 1 -> 1, ln(0.6 / 0.4) + 0.5 = 0.9055, ln 0 -> 0.
FOOLSGOLD_W = [0.0, 0.0, 1.0, math.log(1.5) + 0.5, math.log(1.5) + 0.5]


def test_foolsgold_weights_by_hand():
    torch.testing.assert_close(foolsgold_weights(FOOLSGOLD_X, 1.0), rows(*FOOLSGOLD_W))
    out = told("foolsgold", clients=torch.arange(5))(FOOLSGOLD_X, 2)
    torch.testing.assert_close(out, rows(*FOOLSGOLD_W) @ FOOLSGOLD_X / 5)


def test_foolsgold_follows_its_clients_over_two_rounds():
    """Round 2: every client sends its direction again, twice as long, in reversed rows. Each history is 3 x its
    first vector, so the cosines, the weights per client and the output (1/n) sum_c w_c x_c (x 2) stay those of
    round 1. Taking rows for clients would mix client 0's history with client 4's vectors."""
    rule = told("foolsgold", clients=torch.arange(5))
    first = rule(FOOLSGOLD_X, 2)
    order = torch.tensor([4, 3, 2, 1, 0])
    rule.inform(RoundInfo(clients=order))
    second = rule(2 * FOOLSGOLD_X[order], 2)
    torch.testing.assert_close(second, 2 * first)
    torch.testing.assert_close(rule.history, 3 * FOOLSGOLD_X)
    by_rows = told("foolsgold", clients=torch.arange(5))
    by_rows(FOOLSGOLD_X, 2)
    by_rows.inform(RoundInfo(clients=torch.arange(5)))  # identities pinned to rows: the wrong clients' histories
    assert not torch.allclose(by_rows(2 * FOOLSGOLD_X[order], 2), second)


def test_foolsgold_keeps_a_history_per_pool_client_and_skips_non_finite_vectors():
    rule = told("foolsgold", clients=torch.tensor([7, 2]))
    rule(rows([1, 0], [math.nan, 1]), 0)
    assert rule.history.shape == (8, 2)
    torch.testing.assert_close(rule.history[7], rows(1, 0))
    assert torch.equal(rule.history[2], rows(0, 0))  # its NaN vector was not added
    rule.inform(RoundInfo(clients=torch.tensor([9, 7])))
    rule(rows([0, 1], [1, 0]), 0)
    assert rule.history.shape == (10, 2) and torch.equal(rule.history[7], rows(2, 0))


def test_foolsgold_state_resumes_and_resets():
    rule = told("foolsgold", clients=torch.arange(5))
    rule(FOOLSGOLD_X, 2)
    saved = rule.state_dict()
    expected = rule(FOOLSGOLD_X.flip(1), 2)
    other = told("foolsgold", clients=torch.arange(5))
    other.load_state_dict(saved)
    assert torch.equal(other(FOOLSGOLD_X.flip(1), 2), expected)
    rule.reset()
    assert rule.history is None
    rule(FOOLSGOLD_X, 2)
    with pytest.raises(UserException, match="reset"):  # a model of another size
        rule(FOOLSGOLD_X[:, :2], 2)


# ----------------------------------------------------------------- normclip
def test_norm_clipping_by_hand():
    """M = 1: (3, 4) -> (0.6, 0.8); (0.6, 0.8) and (0, 0) unchanged; mean (0.4, 1.6 / 3). A NaN vector is left out."""
    x = rows([3, 4], [0.6, 0.8], [0, 0])
    torch.testing.assert_close(aggregators.get("normclip(norm=1, sigma=0)")(x, 1), rows(0.4, 1.6 / 3))
    with_nan = torch.cat([x, rows([math.nan, 0])])
    torch.testing.assert_close(aggregators.get("normclip(norm=1, sigma=0)")(with_nan, 1), rows(0.4, 1.6 / 3))


def test_weak_dp_noise_has_std_sigma():
    x = torch.zeros(3, 20_000, dtype=torch.float64)
    noise = aggregators.get("normclip(sigma=0.5)", generator=torch.Generator().manual_seed(2))(x, 1)
    assert noise.std().item() == pytest.approx(0.5, rel=0.02) and abs(noise.mean().item()) < 0.02
    assert aggregators.get("normclip").spec == "normclip" and aggregators.get("normclip").sigma == 0.025


# --------------------------------------------------------------------- crfl
def test_crfl_clips_the_parameters_by_hand():
    """w = (3, 4), lr 0.5, mean (2, -4): FedAvg lands on (2, 6), norm sqrt(40); rho_0 = min(15, 2 + 0.1) = 2.1
    scales it to (2, 6) 2.1 / sqrt(40); the aggregate (w - w') / lr makes the server's step land there."""
    w, lr = rows(3, 4), 0.5
    x = rows([1, -4], [3, -4])
    out = told("crfl(sigma=0)", params=w, lr=lr)(x, 0)
    target = rows(2, 6) * (2.1 / math.sqrt(40))
    torch.testing.assert_close(w - lr * out, target)
    assert (w - lr * out).norm().item() == pytest.approx(2.1)


def test_crfl_threshold_grows_then_caps_and_federated_rounds_step_the_other_way():
    rule = aggregators.get("crfl")
    assert [rule.threshold(t) for t in (0, 9, 200)] == pytest.approx([2.1, 3.0, 15.0])  # min(15, 2 + 0.1 (t + 1))
    assert aggregators.get("crfl(start=inf)").threshold(0) == 15.0
    w = rows(30, 40)  # norm 50 > 15: clipped to norm 15 whatever the step; a federated server adds lr x aggregate
    out = told("crfl(sigma=0)", params=w, lr=-1.0, step=500)(rows([0, 0]), 0)
    torch.testing.assert_close(w + out, rows(9, 12))
    small = told("crfl(sigma=0)", params=rows(0.3, 0.4), lr=-1.0, step=0)(rows([0.1, 0.1]), 0)
    torch.testing.assert_close(small, rows(0.1, 0.1))  # within rho_t: the plain mean


def test_crfl_noise_is_on_the_parameters():
    """Parameters and vectors zero (nothing to clip), lr 1: the aggregate is minus the noise on the parameters."""
    zeros = torch.zeros(2, 20_000, dtype=torch.float64)
    out = told("crfl(sigma=0.2)", params=zeros[0], lr=1.0)(zeros, 0)
    assert (-out).std().item() == pytest.approx(0.2, rel=0.02)
    with pytest.raises(UserException, match="lr = 0"):
        told("crfl", params=torch.zeros(2), lr=0.0)(rows([1, 1]), 0)


# ------------------------------------------------------------------ the round
def test_every_declared_need_is_a_round_field():
    fields = {field.name for field in dataclasses.fields(RoundInfo)}
    for name in aggregators.names():
        assert REGISTRY.get(name).needs <= set(NEEDS) <= fields, name
    assert {n: REGISTRY.get(n).needs for n in ("fltrust", "foolsgold", "crfl", "flame", "normclip")} == {
        "fltrust": {"reference"}, "foolsgold": {"clients"}, "crfl": {"params", "lr"}, "flame": set(),
        "normclip": set()}


@pytest.mark.parametrize("spec, missing", [("fltrust", "own update"), ("foolsgold", "identity"),
                                           ("crfl", "step size"), ("clip>foolsgold", "identity")])
def test_a_rule_not_given_what_it_needs_says_so(spec, missing):
    with pytest.raises(UserException, match=missing):
        aggregators.get(spec)(rows([1, 2], [3, 4]), 0)


def test_a_round_of_the_wrong_size_is_refused():
    with pytest.raises(UserException, match="clients of shape"):
        told("foolsgold", clients=torch.arange(3))(rows([1, 2], [3, 4]), 0)
    with pytest.raises(UserException, match="reference of shape"):
        told("fltrust", reference=torch.ones(3))(rows([1, 2], [3, 4]), 0)


def test_rules_that_need_nothing_are_called_as_before():
    x = rows([1, 2], [3, 4], [5, 7])
    assert aggregators.get("median").needed() == frozenset()
    assert torch.equal(aggregators.get("median")(x, 1), rows(3, 4))
    assert torch.equal(told("median", clients=torch.arange(3))(x, 1), rows(3, 4))


@pytest.mark.parametrize("spec", ["bucketing>foolsgold", "nnm>foolsgold", "clip>bucketing>foolsgold",
                                  "bucketing>clip>foolsgold"])
def test_a_stateful_defence_after_mixing_is_refused_at_check_time(spec):
    rule = aggregators.get(spec)
    with pytest.raises(UserException, match="stateful defence without client identities"):
        rule.check(10, 1)


def test_steps_that_keep_rows_pass_the_senders_on_and_mixing_steps_hide_them():
    info = RoundInfo(clients=torch.arange(4), reference=torch.ones(2))
    for spec in ("clip>foolsgold", "arc>clip>foolsgold"):
        rule = aggregators.get(spec)
        rule.check(4, 1)
        rule.inform(info)
        assert all(step.info is info for step in rule.parts())
    chain = aggregators.get("bucketing>fltrust")
    chain.check(4, 1)
    chain.inform(info)
    assert chain.rule.info.clients is None and chain.rule.info.reference is info.reference
    assert chain.needed() == {"reference"} and aggregators.get("clip>foolsgold").needed() == {"clients"}
    chain(torch.ones(4, 2), 1)  # bucketed vectors are scored against the reference: fine


def test_trial_sees_the_round_and_leaves_the_history_alone():
    rule = told("foolsgold", clients=torch.arange(5))
    rule(FOOLSGOLD_X, 2)
    history = rule.history
    tried = rule.trial(FOOLSGOLD_X.flip(0), 2)
    assert rule.history is history
    assert torch.equal(rule(FOOLSGOLD_X.flip(0), 2), tried)


def test_the_stand_in_round_fits_its_vectors():
    info = RoundInfo.stand_in(4, 3)
    assert info.clients.tolist() == [0, 1, 2, 3] and info.reference.norm().item() == pytest.approx(1.0)
    assert torch.equal(info.params, torch.zeros(3)) and info.lr == 1.0 and info.step == 0
