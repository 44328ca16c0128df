"""Each attack against its paper's formula, on inputs small enough to check by hand."""
import math

import pytest
import scipy.stats
import torch

import attacks
from attacks.alie import alie_z
from attacks.base import AttackContext
from experiments.tools import UserException


def ctx(n=10, decl_f=2, generator=None, own=None):
    return AttackContext(nb_workers=n, decl_f=decl_f, aggregator=None, generator=generator, own_gradients=own)


HONEST = torch.tensor([[1.0, 2.0], [3.0, 2.0], [5.0, 8.0]], dtype=torch.float64)


def test_signflip_sends_minus_the_honest_mean():
    out = attacks.get("signflip")(HONEST, 2, ctx())
    assert torch.equal(out, torch.tensor([[-3.0, -4.0]] * 2, dtype=torch.float64))


def test_ipm_sends_minus_epsilon_times_the_mean():
    assert torch.allclose(attacks.get("ipm")(HONEST, 1, ctx()), torch.tensor([[-0.3, -0.4]], dtype=torch.float64))
    assert torch.allclose(attacks.get("ipm", epsilon=2)(HONEST, 1, ctx()), torch.tensor([[-6.0, -8.0]], dtype=torch.float64))


def test_alie_with_fixed_z_is_mean_minus_z_sample_std():
    # columns: mean 3 and 4; sample std 2 and sqrt(12)
    out = attacks.get("alie", z=1.5)(HONEST, 3, ctx())
    expected = torch.tensor([3.0 - 1.5 * 2.0, 4.0 - 1.5 * math.sqrt(12.0)], dtype=torch.float64)
    assert out.shape == (3, 2)
    assert torch.allclose(out, expected.expand(3, 2))


@pytest.mark.parametrize("n, f", [(2, 1), (3, 1), (10, 1), (10, 4), (11, 5), (25, 5), (50, 11), (100, 20)])
def test_alie_z_matches_the_paper_formula_with_scipy(n, f):
    s = math.floor(n / 2 + 1) - f
    assert alie_z(n, f) == pytest.approx(scipy.stats.norm.ppf((n - s) / n), abs=1e-12)


def test_alie_default_uses_the_formula_with_n_workers_and_f_requested():
    honest = torch.tensor([[0.0], [2.0]])  # mean 1, sample std sqrt(2)
    out = attacks.get("alie")(honest, 5, ctx(n=25))
    assert out[0, 0].item() == pytest.approx(1.0 - scipy.stats.norm.ppf(17 / 25) * math.sqrt(2.0), rel=1e-6)


@pytest.mark.parametrize("n, f", [(10, 6), (4, 3), (1, 1)])
def test_alie_formula_rejects_a_byzantine_majority(n, f):
    with pytest.raises(UserException, match="fixed z"):
        alie_z(n, f)


def test_alie_std_is_two_pass_and_does_not_cancel():
    honest = torch.tensor([[1e4], [1e4 + 1], [1e4 + 2]], dtype=torch.float32)
    out = attacks.get("alie", z=1.0)(honest, 1, ctx())
    assert out.item() == pytest.approx(1e4 + 1 - 1.0, abs=1e-3)


def test_alie_with_one_honest_worker_sends_its_vector():
    honest = torch.tensor([[4.0, -1.0]])
    assert torch.equal(attacks.get("alie", z=3)(honest, 2, ctx()), honest.expand(2, 2))


def test_gaussian_noise_has_the_requested_moments_and_follows_the_generator():
    attack = attacks.get("gaussian", std=2.0, mean=0.5)
    honest = torch.zeros(3, 20000)
    out = attack(honest, 4, ctx(generator=torch.Generator().manual_seed(1)))
    assert out.shape == (4, 20000)
    assert out.mean().item() == pytest.approx(0.5, abs=0.05)
    assert out.std().item() == pytest.approx(2.0, rel=0.02)
    again = attack(honest, 4, ctx(generator=torch.Generator().manual_seed(1)))
    other = attack(honest, 4, ctx(generator=torch.Generator().manual_seed(2)))
    assert torch.equal(out, again) and not torch.equal(out, other)
    assert not torch.equal(out[0], out[1])


def test_gaussian_without_a_generator_refuses_global_randomness():
    with pytest.raises(ValueError, match="Generator"):
        attacks.get("gaussian")(HONEST, 1, ctx())


def test_non_finite_and_zero_vectors():
    assert torch.isposinf(attacks.get("inf")(HONEST, 2, ctx())).all()
    assert torch.isnan(attacks.get("nan")(HONEST, 2, ctx())).all()
    zero = attacks.get("zero")(HONEST, 2, ctx())
    assert torch.equal(zero, torch.zeros(2, 2, dtype=torch.float64))


def test_mimic_copies_the_fixed_worker():
    out = attacks.get("mimic", worker=2)(HONEST, 2, ctx())
    assert torch.equal(out, HONEST[2].expand(2, 2))
    with pytest.raises(UserException, match="only 3 honest"):
        attacks.get("mimic", worker=3)(HONEST, 1, ctx())


def _spread(seed):
    """Five honest vectors: a tight cluster and one worker far along the second axis."""
    g = torch.Generator().manual_seed(seed)
    honest = torch.randn(5, 4, generator=g) * 0.1
    honest[3, 1] += 6.0
    return honest


def test_mimic_variance_heuristic_copies_the_worker_along_the_max_variance_direction():
    attack = attacks.get("mimic", heuristic="variance", warmup=3)
    for seed in range(3):
        honest = _spread(seed)
        out = attack(honest, 2, ctx())
        assert torch.equal(out, honest[3].expand(2, 4))
    # after the warmup the target is frozen, whatever the vectors look like
    later = _spread(9)
    later[3, 1] -= 6.0
    later[0, 2] += 9.0
    assert torch.equal(attack(later, 1, ctx()), later[3:4])


def test_mimic_state_round_trip_resumes_identically():
    first = attacks.get("mimic", heuristic="variance", warmup=4)
    for seed in range(2):
        first(_spread(seed), 1, ctx())
    resumed = attacks.get("mimic", heuristic="variance", warmup=4)
    resumed.load_state_dict(first.state_dict())
    for seed in range(2, 5):
        assert torch.equal(first(_spread(seed), 1, ctx()), resumed(_spread(seed), 1, ctx()))


@pytest.mark.parametrize("name", ["bitflip", "reverse"])
def test_bitflip_and_reverse_send_minus_their_own_gradient(name):
    own = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    out = attacks.get(name)(HONEST, 2, ctx(own=own))
    assert torch.equal(out, -own)
    assert torch.equal(attacks.get(name, scale=2)(HONEST, 2, ctx(own=own)), -2 * own)
    assert torch.equal(own, torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="Byzantine batches"):
        attacks.get(name)(HONEST, 2, ctx())


def stand_in_vectors(inputs, targets, seen):
    """A context's ``vectors``: poison the fixed batches, then 'compute' [input sums, label sums] per worker."""
    def vectors(poison, momentum):
        x, y = poison(inputs, targets, 3) if poison is not None else (inputs, targets)
        seen.append((poison, momentum))
        return torch.stack([x.sum((1, 2)), y.double().sum(1)], dim=1)
    return vectors


def test_bitflip_computes_its_own_gradients_on_demand_from_the_byzantine_batches():
    seen = []
    inputs, targets = torch.ones(2, 3, 1, dtype=torch.float64), torch.tensor([[0, 1, 2], [2, 2, 2]])
    context = AttackContext(nb_workers=5, decl_f=2, aggregator=None, generator=None,
                            vectors=stand_in_vectors(inputs, targets, seen))
    out = attacks.get("bitflip").byzantine(HONEST, 2, context)
    assert torch.equal(out, -torch.tensor([[3.0, 3.0], [3.0, 6.0]], dtype=torch.float64))
    assert seen == [(None, True)]  # computed once, unpoisoned, with worker momentum
    attacks.get("bitflip(momentum=false)").byzantine(HONEST, 2, AttackContext(
        nb_workers=5, decl_f=2, aggregator=None, generator=None, vectors=stand_in_vectors(inputs, targets, seen)))
    assert seen[-1] == (None, False)


@pytest.mark.parametrize("name, flipped", [("none", False), ("labelflip", True)])
def test_data_attacks_send_honest_gradients_of_their_poisoned_batches(name, flipped):
    inputs, targets = torch.ones(1, 3, 2, dtype=torch.float64), torch.tensor([[0, 1, 2]])
    context = AttackContext(nb_workers=4, decl_f=1, aggregator=None, generator=None, num_classes=3,
                            vectors=stand_in_vectors(inputs, targets, []))
    out = attacks.get(name).byzantine(HONEST, 1, context)
    label_sum = (2 - targets).sum() if flipped else targets.sum()
    assert torch.equal(out, torch.tensor([[6.0, float(label_sum)]], dtype=torch.float64))
    assert attacks.get(name).byzantine(HONEST, 0, context).shape == (0, 2)


def test_labelflip_maps_y_to_c_minus_one_minus_y_on_stacked_batches():
    inputs = torch.arange(24.0).reshape(2, 3, 4)
    targets = torch.tensor([[0, 1, 2], [9, 3, 4]])
    new_inputs, new_targets = attacks.get("labelflip").poison(inputs, targets, 10)
    assert torch.equal(new_targets, torch.tensor([[9, 8, 7], [0, 6, 5]]))
    assert torch.equal(new_inputs, inputs) and new_inputs.data_ptr() != inputs.data_ptr()
    assert torch.equal(targets, torch.tensor([[0, 1, 2], [9, 3, 4]]))


def test_labelflip_rejects_labels_outside_the_classes():
    with pytest.raises(UserException, match=r"\[0, 3\)"):
        attacks.get("labelflip").poison(torch.zeros(2, 1), torch.tensor([0, 3]), 3)
