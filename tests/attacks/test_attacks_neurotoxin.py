"""Neurotoxin on small tensors: which coordinates its mask keeps, where the mask comes from, the norm bound, bad
input."""
import math

import pytest
import torch

import attacks
from attacks.base import AttackContext
from attacks.neurotoxin import neurotoxin_mask
from attacks.targeted import DataView
from experiments.tools import UserException

# |reference|, largest first: coordinate 1 (5), 3 (4), 9 (3), 7 (2), 6 (1), ...
REFERENCE = torch.tensor([0.1, -5.0, 0.3, 4.0, -0.2, 0.0, 1.0, -2.0, 0.05, 3.0])


def prepared(spec):
    attack = attacks.get(spec)
    attack.prepare(DataView.of(torch.zeros(1, 1, 6, 6), 10))
    return attack


def context(previous=None, poisoned=None, own=None, calls=None):
    """Vectors: ``poisoned`` on poisoned batches, ``own`` on clean ones; ``calls`` records (poisoned?, momentum)."""
    def vectors(poison, momentum):
        if calls is not None:
            calls.append((poison is not None, momentum))
        return (poisoned if poison is not None else own).clone()
    return AttackContext(nb_workers=6, decl_f=2, aggregator=None, generator=torch.Generator(), num_classes=10,
                         vectors=vectors, previous_aggregate=previous)


def test_the_mask_drops_the_largest_magnitudes_not_the_most_negative_values():
    keep = neurotoxin_mask(REFERENCE, 0.3)  # int(0.7 * 10) = 7 kept: 1, 3 and 9 excluded (5, 4, 3 in magnitude)
    assert (~keep).nonzero().flatten().tolist() == [1, 3, 9]
    assert (~neurotoxin_mask(REFERENCE, 0.05)).nonzero().flatten().tolist() == [1]  # int(9.5) = 9 kept
    assert neurotoxin_mask(REFERENCE, 0.0).all() and keep.sum() == 7


def test_the_update_is_zero_where_the_previous_aggregate_is_largest_and_kept_elsewhere():
    poisoned = torch.arange(20, dtype=torch.float32).view(2, 10) + 1
    out = prepared("neurotoxin(ratio=0.3,bound=none)").byzantine(torch.zeros(4, 10), 2, context(REFERENCE, poisoned))
    expected = poisoned.clone()
    expected[:, [1, 3, 9]] = 0.0
    assert torch.equal(out, expected)


def test_the_masked_update_is_projected_onto_the_l2_ball():
    poisoned = torch.ones(2, 10)
    poisoned[1] *= 0.1  # seven coordinates kept: norms sqrt(7) and 0.1 sqrt(7) ~ 0.26
    out = prepared("neurotoxin(ratio=0.3,bound=0.5)").byzantine(torch.zeros(4, 10), 2, context(REFERENCE, poisoned))
    kept = torch.ones(10)
    kept[[1, 3, 9]] = 0.0
    assert torch.allclose(out[0], kept * 0.5 / math.sqrt(7))  # the first row shrunk to norm 0.5
    assert torch.allclose(out[1], kept * 0.1)  # the second within the bound: masked only


def test_at_the_first_step_the_mask_comes_from_the_attackers_own_clean_vectors_without_momentum():
    own = torch.zeros(2, 10)
    own[0, 4], own[1, 4], own[0, 0] = 8.0, 6.0, -12.0  # mean: 7 at coordinate 4, -6 at 0
    calls = []
    out = prepared("neurotoxin(ratio=0.2,bound=none)").byzantine(torch.zeros(4, 10), 2,
                                                                 context(None, torch.ones(2, 10), own, calls))
    assert out[:, [0, 4]].eq(0).all() and out.sum() == 2 * 8
    assert calls == [(False, False), (True, True)]  # clean without worker momentum, then poisoned with it


def test_no_attacker_gives_an_empty_tensor():
    assert prepared("neurotoxin").byzantine(torch.zeros(4, 10), 0, context(REFERENCE)).shape == (0, 10)


@pytest.mark.parametrize("spec, words", [
    ("neurotoxin(ratio=1)", "0 <= ratio < 1"),
    ("neurotoxin(ratio=-0.1)", "0 <= ratio < 1"),
    ("neurotoxin(bound=0)", "a finite bound > 0"),
    ("neurotoxin(size=0)", "size >= 1"),
])
def test_bad_parameters_are_one_line_user_errors(spec, words):
    with pytest.raises(UserException, match="neurotoxin") as caught:
        attacks.get(spec)
    assert words in str(caught.value) and "\n" not in str(caught.value)
