"""Per-sample clipping in every engine (DP-SGD's clipped sums), against one sample at a time by hand."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from experiments.tools import UserException

from simulator.core.engines import make_engine
from simulator.core.engines.base import PrivateSteps
from simulator.core.engines.grouped_private import _Linear

ENGINES = ("loop", "vmap", "grouped")


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 10))


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 2, padding=1),
                         nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(6 * 4 * 4, 10))


class Traced(nn.Module):
    """No plain sequence: the grouped engine runs its traced graph (a grouped convolution, a residual sum)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.grouped, self.linear = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1, groups=2), \
            nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.linear(torch.flatten(x + self.grouped(x), 1))


def by_hand(module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, clip: float,
            params: list[torch.Tensor] | None = None) -> torch.Tensor:
    """[k, d]: each worker's sum over its samples, one autograd pass per sample, each gradient clipped to clip."""
    out = []
    for i in range(inputs.shape[0]):
        if params is not None:
            torch.nn.utils.vector_to_parameters(params[i], module.parameters())
        total = 0
        for j in range(inputs.shape[1]):
            loss = F.cross_entropy(module(inputs[i, j:j + 1]), targets[i, j:j + 1])
            grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(module.parameters()))])
            total = total + grad * min(1.0, clip / grad.norm().item())
        out.append(total)
    return torch.stack(out)


def batches(k: int = 3, b: int = 5):
    generator = torch.Generator().manual_seed(1)
    return torch.randn(k, b, 1, 8, 8, generator=generator), torch.randint(0, 10, (k, b), generator=generator)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("model", [mlp, cnn, Traced])
@pytest.mark.parametrize("clip", [0.05, 1e3])  # every sample clipped; none
def test_clipped_sums_match_one_sample_at_a_time(engine, model, clip):
    module = model()
    inputs, targets = batches()
    sums, losses = make_engine(engine, module, F.cross_entropy).clipped_gradients(inputs, targets, clip=clip)
    expected = by_hand(module, inputs, targets, clip)
    assert torch.allclose(sums, expected, rtol=1e-4, atol=1e-6)
    mean_loss = torch.stack([F.cross_entropy(module(x), y) for x, y in zip(inputs, targets)])
    assert torch.allclose(losses, mean_loss, atol=1e-6)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_sample_contributes_at_most_the_clip_norm(engine):
    """With one sample per worker the clipped sum is that sample's contribution: its norm is min(||g||, C)."""
    module = cnn()
    inputs, targets = batches(k=6, b=1)
    sums, _ = make_engine(engine, module, F.cross_entropy).clipped_gradients(inputs, targets, clip=0.1)
    raw = by_hand(module, inputs, targets, clip=float("inf"))
    assert torch.allclose(sums.norm(dim=1), raw.norm(dim=1).clamp(max=0.1), rtol=1e-5)
    assert (sums.norm(dim=1) <= 0.1 + 1e-6).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_clipped_sums_at_each_workers_own_parameters(engine):
    module = mlp()
    inputs, targets = batches()
    start = torch.nn.utils.parameters_to_vector(module.parameters()).detach()
    at = start + 0.1 * torch.randn(3, start.numel(), generator=torch.Generator().manual_seed(2))
    sums, _ = make_engine(engine, module, F.cross_entropy).clipped_gradients(inputs, targets, clip=0.3, at=at)
    expected = by_hand(module, inputs, targets, 0.3, params=at)
    torch.nn.utils.vector_to_parameters(start, module.parameters())
    assert torch.allclose(sums, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("engine", ENGINES)
def test_private_local_steps_are_dp_sgd_steps(engine):
    """K = 2 local steps of plain SGD on (clipped sum + noise) / b from the same start, with the noise given."""
    module, lr, clip = mlp(), 0.5, 0.2
    generator = torch.Generator().manual_seed(3)
    inputs, targets = torch.randn(2, 2, 4, 1, 8, 8, generator=generator), torch.randint(0, 10, (2, 2, 4),
                                                                                          generator=generator)
    start = torch.nn.utils.parameters_to_vector(module.parameters()).detach()
    noise = torch.randn(2, 2, start.numel(), generator=generator)
    updates, _ = make_engine(engine, module, F.cross_entropy).local_updates(
        inputs, targets, lr=lr, private=PrivateSteps(clip, noise))
    params = start.expand(2, -1).clone()
    for k in range(2):
        params = params - lr * (by_hand(module, inputs[:, k], targets[:, k], clip, params=params) + noise[:, k]) / 4
    torch.nn.utils.vector_to_parameters(start, module.parameters())
    assert torch.allclose(updates, params - start, rtol=1e-4, atol=1e-6)
    assert torch.equal(torch.nn.utils.parameters_to_vector(module.parameters()), start)


@pytest.mark.parametrize("positions", [3, 40])  # the Gram form (T (F + O) < F O) and the per-sample gradients
def test_a_linear_layer_at_several_positions_sums_them_per_sample(positions):
    """||g_j||^2 is not ||x_j||^2 ||delta_j||^2 once a sample has several positions: sum_t delta_t x_t^T."""
    generator = torch.Generator().manual_seed(4)
    k, b, features, outputs = 2, 3, 16, 16
    x = torch.randn(k, b, positions, features, generator=generator)
    delta = torch.randn(k, b, positions, outputs, generator=generator)
    entry = _Linear(x, torch.empty(0), True, [0, 1])
    per_sample = torch.einsum("kbto,kbtf->kbof", delta, x)
    expected = per_sample.square().sum(dim=(2, 3)) + delta.sum(dim=2).square().sum(dim=2)
    assert torch.allclose(entry.squared_norms(delta), expected, rtol=1e-4)
    wrong = x.square().sum(dim=(2, 3)) * delta.square().sum(dim=(2, 3))
    assert not torch.allclose(wrong, expected - delta.sum(dim=2).square().sum(dim=2), rtol=1e-2)
    factors = torch.rand(k, b, generator=generator)
    weight, bias = entry.clipped(delta, factors)
    assert torch.allclose(weight, torch.einsum("kb,kbof->kof", factors, per_sample), rtol=1e-4, atol=1e-5)
    assert torch.allclose(bias, torch.einsum("kb,kbto->ko", factors, delta), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layers", [1, 2])  # the first layer's output (a leaf there) or a later one's
def test_an_in_place_change_of_a_recorded_tensor_is_refused_by_the_grouped_engine(layers):
    class Residual(nn.Module):  # a functional in-place ReLU overwrites a convolution's output once recorded
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.convs = nn.ModuleList(nn.Conv2d(1, 1, 3, padding=1) for _ in range(layers))
            self.linear = nn.Linear(64, 10)

        def forward(self, x):
            for conv in self.convs:
                x = F.relu(conv(x), inplace=True) + x
            return self.linear(torch.flatten(x, 1))

    inputs, targets = batches()
    engine = make_engine("grouped", Residual(), F.cross_entropy)
    assert torch.allclose(engine.gradients(inputs, targets)[0], make_engine("loop", Residual(), F.cross_entropy)
                          .gradients(inputs, targets)[0], atol=1e-5)  # the grouped engine takes it without privacy
    with pytest.raises(UserException, match="in-place operation.*--engine vmap"):
        engine.clipped_gradients(inputs, targets, clip=1.0)
    sums, _ = make_engine("vmap", Residual(), F.cross_entropy).clipped_gradients(inputs, targets, clip=0.1)
    assert torch.allclose(sums, by_hand(Residual(), inputs, targets, 0.1), rtol=1e-4, atol=1e-6)
