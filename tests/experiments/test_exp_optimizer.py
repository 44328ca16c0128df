import pytest
import torch

from experiments import Configuration, Model, Optimizer, UnavailableException, UserException

CPU = Configuration(device="cpu", dtype=torch.float32)


def test_sgd_step_applies_the_flat_gradient():
    model = Model("simples-logit", CPU, in_features=4, num_classes=2, init_seed=0)
    before = model.get().clone()
    optimizer = Optimizer("sgd", model, lr=0.5)
    gradient = torch.ones_like(before)
    model.update(gradient, optimizer)
    assert torch.allclose(model.get(), before - 0.5)


def test_learning_rate_control():
    model = Model("simples-logit", CPU, in_features=4, num_classes=2)
    optimizer = Optimizer("adam", model, lr=0.01)
    assert optimizer.get_lr() == 0.01
    optimizer.set_lr(0.2)
    assert all(group["lr"] == 0.2 for group in optimizer.optim.param_groups)
    assert isinstance(optimizer.optim, torch.optim.Adam)


def test_state_dict_round_trip_and_errors():
    model = Model("simples-logit", CPU, in_features=4, num_classes=2)
    optimizer = Optimizer("sgd", model, lr=0.1, momentum=0.9)
    model.update(torch.ones_like(model.get()), optimizer)
    other = Optimizer("sgd", model, lr=0.1, momentum=0.9)
    other.load_state_dict(optimizer.state_dict())
    assert other.state_dict()["state"].keys() == optimizer.state_dict()["state"].keys()
    with pytest.raises(UnavailableException, match="sgd"):
        Optimizer("sgdd", model)
    with pytest.raises(UserException, match="Invalid arguments"):
        Optimizer("sgd", model, lr=-1.0)
    assert Optimizer(torch.optim.SGD, model, lr=0.3).get_lr() == 0.3
