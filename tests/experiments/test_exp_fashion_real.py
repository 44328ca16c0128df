"""Real Fashion-MNIST from Debian's dataset-fashion-mnist (skipped when not installed)."""
import pytest
import torch

from experiments import Configuration, Criterion, Loss, Model, Optimizer, datasets
from experiments.datasets.idx import DEBIAN_FASHION

pytestmark = pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian package dataset-fashion-mnist not installed")


def test_real_fashion_mnist_loads_normalised(tmp_path):
    inputs, labels = datasets.load_tensors("fashionmnist", train=False, root=tmp_path)  # found in /usr/share
    assert inputs.shape == (10000, 1, 28, 28) and labels.shape == (10000,)
    assert torch.bincount(labels).tolist() == [1000] * 10
    assert abs(inputs.mean().item()) < 0.05 and abs(inputs.std().item() - 1) < 0.05


@pytest.mark.slow
def test_real_fashion_mnist_trains_above_chance(tmp_path):
    inputs, labels = datasets.load_tensors("fashionmnist", train=True, root=tmp_path)
    test_inputs, test_labels = datasets.load_tensors("fashionmnist", train=False, root=tmp_path)
    config = Configuration(device="cpu", dtype=torch.float32)
    model = Model("simples-full", config, init_seed=0)
    optimizer = Optimizer("sgd", model, lr=0.1)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        index = torch.randint(0, len(labels), (64,), generator=generator)
        model.update(model.backprop(_Fixed(inputs[index], labels[index]), Loss("crossentropy")), optimizer)
    accuracy = model.eval(_Fixed(test_inputs, test_labels), Criterion("top-k"))
    assert accuracy.item() > 0.7


class _Fixed:
    def __init__(self, inputs, targets):
        self.batch = (inputs, targets)

    def sample(self, config=None):
        return self.batch
