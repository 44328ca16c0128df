"""Model replacement on small tensors: gamma = n / eta in both settings, the override, the l2 projection, bad input."""
import pytest
import torch

import attacks
from attacks.base import AttackContext
from attacks.replacement import project, replacement_scale
from attacks.targeted import DataView
from experiments.tools import UserException

TRAINED = torch.tensor([[0.3, 0.4], [-1.0, 0.0]])  # what the two attackers' poisoned training gives


def prepared(spec):
    attack = attacks.get(spec)
    attack.prepare(DataView.of(torch.zeros(1, 1, 6, 6), 10))
    return attack


def context(n=10, federated=False, server_lr=None, seen=None):
    def vectors(poison, momentum):
        if seen is not None:
            seen.append(poison(torch.zeros(2, 4, 1, 6, 6), torch.zeros(2, 4, dtype=torch.long), 10))
        return TRAINED.clone()
    return AttackContext(nb_workers=n, decl_f=2, aggregator=None, generator=torch.Generator(), num_classes=10,
                         vectors=vectors, server_lr=server_lr, federated=federated)


def test_a_federated_update_is_scaled_by_n_over_the_servers_lr():
    out = prepared("model-replacement").byzantine(torch.zeros(8, 2), 2, context(10, True, 0.5))
    assert torch.allclose(out, 20 * TRAINED)  # gamma = 10 / 0.5


def test_a_gradient_is_scaled_by_n_whatever_the_lr():
    # the server steps by -lr mean: n times the attacker's gradient moves the model by its own step -lr g
    out = prepared("model-replacement").byzantine(torch.zeros(8, 2), 2, context(10, False, 0.1))
    assert torch.allclose(out, 10 * TRAINED)
    assert replacement_scale(context(7, False, None)) == 7.0


def test_a_given_scale_replaces_n_over_eta():
    out = prepared("model-replacement(scale=3)").byzantine(torch.zeros(8, 2), 2, context(10, True, 0.5))
    assert torch.allclose(out, 3 * TRAINED)


def test_the_attacker_trains_on_batches_stamped_and_relabelled_as_badnets_does():
    seen = []
    prepared("model-replacement(size=2,fraction=0.5,target=3)").byzantine(torch.zeros(8, 2), 2,
                                                                          context(seen=seen))
    [(inputs, targets)] = seen
    assert targets.tolist() == [[3, 3, 0, 0], [3, 3, 0, 0]]
    assert inputs[:, :2, 0, 4:, 4:].eq(1).all() and inputs.sum() == 2 * 2 * 4


def test_constrain_and_scale_projects_the_scaled_update_onto_the_l2_ball():
    # gamma = 4: rows (1.2, 1.6), norm 2, projected to norm 1; (-4, 0), norm 4, to (-1, 0)
    out = prepared("model-replacement(bound=1)").byzantine(torch.zeros(2, 2), 2, context(4))
    assert torch.allclose(out, torch.tensor([[0.6, 0.8], [-1.0, 0.0]]))
    inside = prepared("model-replacement(bound=10)").byzantine(torch.zeros(2, 2), 2, context(4))
    assert torch.allclose(inside, 4 * TRAINED)  # within the bound: unchanged


def test_project_leaves_short_and_zero_rows_alone_and_returns_a_new_tensor():
    rows = torch.tensor([[3.0, 4.0], [0.0, 0.0], [0.1, 0.0]])
    out = project(rows, 2.5)
    assert torch.allclose(out, torch.tensor([[1.5, 2.0], [0.0, 0.0], [0.1, 0.0]]))
    assert project(rows, None) is not rows and torch.equal(project(rows, None), rows)


def test_no_attacker_gives_an_empty_tensor():
    assert prepared("model-replacement").byzantine(torch.zeros(8, 2), 0, context()).shape == (0, 2)


def test_a_federated_context_without_the_servers_lr_is_a_programming_error():
    with pytest.raises(ValueError, match="server's lr"):
        prepared("model-replacement").byzantine(torch.zeros(8, 2), 2, context(10, True, None))


@pytest.mark.parametrize("spec, words", [
    ("model-replacement(scale=0)", "a finite scale > 0"),
    ("model-replacement(bound=-1)", "a finite bound > 0"),
    ("model-replacement(fraction=0)", "0 < fraction <= 1"),
])
def test_bad_parameters_are_one_line_user_errors(spec, words):
    with pytest.raises(UserException, match="model-replacement") as caught:
        attacks.get(spec)
    assert words in str(caught.value) and "\n" not in str(caught.value)
