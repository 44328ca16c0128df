import pytest
import torch

from experiments import Configuration, UserException
from experiments.configuration import place


def test_defaults_pick_cuda_only_when_available():
    config = Configuration()
    assert config["device"].type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert config["dtype"] == torch.get_default_dtype()
    assert config["non_blocking"] is False and config.relink is False
    assert Configuration.default_device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_is_an_immutable_mapping_usable_as_to_kwargs():
    config = Configuration(device="cpu", dtype=torch.float64, noblock=True, relink=True)
    assert dict(config) == {"device": torch.device("cpu"), "dtype": torch.float64, "non_blocking": True}
    assert len(config) == 3 and config.relink is True
    assert torch.ones(2).to(**config).dtype == torch.float64
    with pytest.raises(AttributeError):
        config.relink = False
    with pytest.raises(TypeError):
        config["device"] = "cuda"


def test_device_strings_resolve_and_bad_ones_are_user_errors():
    assert Configuration(device="cuda:1")["device"] == torch.device("cuda", 1)
    assert Configuration(device=torch.device("cpu"))["device"] == torch.device("cpu")
    with pytest.raises(UserException, match="Invalid device"):
        Configuration(device="gpu-please")
    with pytest.raises(UserException, match="dtype"):
        Configuration(device="cpu", dtype="float32")


def test_repr_equality_and_hash():
    a = Configuration(device="cpu", dtype=torch.float32)
    assert repr(a) == "Configuration(device='cpu', dtype=torch.float32, non_blocking=False, relink=False)"
    assert a == Configuration(device="cpu", dtype=torch.float32)
    assert a != Configuration(device="cpu", dtype=torch.float32, relink=True)
    assert len({a, Configuration(device="cpu", dtype=torch.float32)}) == 1


def test_place_casts_floats_but_keeps_integer_labels():
    config = Configuration(device="cpu", dtype=torch.float64)
    x, y = place((torch.ones(2, dtype=torch.float32), torch.tensor([1, 2])), config)
    assert x.dtype == torch.float64 and y.dtype == torch.int64
    assert place({"a": torch.ones(1)}, config)["a"].dtype == torch.float64
    assert place("text", config) == "text"
