import pytest
import torch

from experiments import Criterion, Loss, UnavailableException, UserException

OUTPUT = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.3, 0.2]])
TARGET = torch.tensor([0, 2])
PARAMS = torch.tensor([1.0, -2.0, 3.0])


def test_torch_losses_by_lower_case_name():
    expected = torch.nn.functional.cross_entropy(OUTPUT, TARGET)
    assert torch.allclose(Loss("crossentropy")(OUTPUT, TARGET, PARAMS), expected)
    assert torch.allclose(Loss("crossentropyloss")(OUTPUT, TARGET, PARAMS), expected)
    log_probs = OUTPUT.log_softmax(dim=1)
    assert torch.allclose(Loss("nll")(log_probs, TARGET, PARAMS), expected)
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])
    assert Loss("mse")(a, b, PARAMS).item() == pytest.approx(2.5)
    assert Loss("l1loss")(a, b, PARAMS).item() == pytest.approx(1.5)
    assert Loss("mse", reduction="sum")(a, b, PARAMS).item() == pytest.approx(5.0)


def test_regularisers_read_the_parameters():
    assert Loss("l1")(OUTPUT, TARGET, PARAMS).item() == pytest.approx(6.0)
    assert Loss("l2")(OUTPUT, TARGET, PARAMS).item() == pytest.approx(14.0)
    with pytest.raises(UserException, match="no arguments"):
        Loss("l2", 3)


def test_a_factor_is_applied_exactly_once():
    l2 = Loss("l2")(OUTPUT, TARGET, PARAMS)
    assert (0.5 * Loss("l2"))(OUTPUT, TARGET, PARAMS).item() == pytest.approx(0.5 * l2.item())
    assert (Loss("l2") * 0.5)(OUTPUT, TARGET, PARAMS).item() == pytest.approx(0.5 * l2.item())
    assert (2 * (0.5 * Loss("l2")))(OUTPUT, TARGET, PARAMS).item() == pytest.approx(l2.item())
    assert (Loss("l2") / 4)(OUTPUT, TARGET, PARAMS).item() == pytest.approx(l2.item() / 4)


def test_sums_compose_and_print_readably():
    total = Loss("crossentropy") + 0.01 * Loss("l2")
    expected = torch.nn.functional.cross_entropy(OUTPUT, TARGET) + 0.01 * 14.0
    assert total(OUTPUT, TARGET, PARAMS).item() == pytest.approx(expected.item())
    assert str(total) == "crossentropy + 0.01 * l2"
    assert str(0.5 * total) == "0.5 * crossentropy + 0.005 * l2"
    assert str(sum([Loss("l1"), Loss("l2")])) == "l1 + l2"
    assert not Loss("crossentropy").needs_params and total.needs_params


def test_callable_losses_and_errors():
    custom = Loss(lambda output, target, params: params.sum())
    assert custom(OUTPUT, TARGET, PARAMS).item() == pytest.approx(2.0)
    with pytest.raises(UnavailableException, match="crossentropy"):
        Loss("crossentropi")
    with pytest.raises(UserException):
        Loss(3)
    with pytest.raises(TypeError):
        Loss("l2") * "two"


def test_top_k_counts_correct_predictions():
    assert Criterion("top-k")(OUTPUT, TARGET).tolist() == [1.0, 2.0]
    assert Criterion("top-k", k=2)(OUTPUT, TARGET).tolist() == [2.0, 2.0]
    assert Criterion("top-k", k=5)(OUTPUT, TARGET).tolist() == [2.0, 2.0]
    with pytest.raises(UserException, match="k >= 1"):
        Criterion("top-k", k=0)


def test_sigmoid_thresholds_at_one_half():
    output = torch.tensor([[3.0], [-1.0], [0.2], [-0.1]])
    target = torch.tensor([1.0, 0.0, 0.0, 1.0])
    assert Criterion("sigmoid")(output, target).tolist() == [2.0, 4.0]
    with pytest.raises(UnavailableException, match="top-k"):
        Criterion("accuracy")
    with pytest.raises(UserException, match="Invalid arguments"):
        Criterion("sigmoid", 3)


from hypothesis import given, settings, strategies as st

FACTORS = st.floats(min_value=-100, max_value=100, allow_nan=False)


@settings(max_examples=30, deadline=None)
@given(a=FACTORS, b=FACTORS)
def test_scaling_and_sums_are_linear(a, b):
    ce = Loss("crossentropy")(OUTPUT, TARGET, PARAMS).item()
    l2 = Loss("l2")(OUTPUT, TARGET, PARAMS).item()
    combined = (a * Loss("crossentropy") + Loss("l2") * b)(OUTPUT, TARGET, PARAMS).item()
    assert combined == pytest.approx(a * ce + b * l2, rel=1e-5, abs=1e-4)
