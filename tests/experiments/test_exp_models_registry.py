import pytest
import torch

import experiments.models as models
from experiments import UnavailableException, UserException


def test_custom_names_and_descriptions():
    assert {"simples-full", "simples-conv", "simples-digits", "simples-cifar", "simples-logit"} <= set(models.names())
    for name in models.names():
        line = models.describe(name)
        assert line and "\n" not in line
    with pytest.raises(UnavailableException):
        models.describe("resnet18")


def test_every_custom_model_takes_num_classes():
    shapes = {"simples-full": (1, 28, 28), "simples-conv": (1, 28, 28), "simples-digits": (1, 8, 8),
              "simples-cifar": (3, 32, 32), "simples-logit": (1, 28, 28)}
    for name, shape in shapes.items():
        module = models.constructor(name)(num_classes=7).eval()
        assert module(torch.zeros(2, *shape)).shape == (2, 7)


def test_torchvision_names_with_and_without_prefix():
    assert models.constructor("resnet18") is models.constructor("torchvision-resnet18")
    with pytest.raises(UnavailableException, match="resnet18"):
        models.constructor("resnet19")


@pytest.fixture
def broken_module(tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text("import a_module_that_does_not_exist\n__all__ = ['net']\n")
    (tmp_path / "extra.py").write_text(
        "import torch\n__all__ = ['tiny']\ndef tiny(num_classes=2):\n    '''A tiny test model.'''\n"
        "    return torch.nn.Linear(3, num_classes)\n")
    monkeypatch.setattr(models, "__path__", [*models.__path__, str(tmp_path)])
    monkeypatch.setattr(models, "REGISTRY", models.make_registry())
    yield
    import sys
    for name in ("experiments.models.extra", "experiments.models.broken"):
        sys.modules.pop(name, None)


def test_modules_are_discovered_and_broken_ones_report_their_error(broken_module):
    assert "extra-tiny" in models.names() and models.describe("extra-tiny") == "A tiny test model."
    with pytest.raises(UserException, match="failed to import.*a_module_that_does_not_exist"):
        models.constructor("broken-net")
    with pytest.raises(UserException, match="failed to import"):
        models.describe("broken-net")
