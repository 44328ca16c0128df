"""Gradient engines: vmap == loop == grouped == plain autograd, buffers, randomness, auto fallback."""
import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from experiments import Configuration, Model
from experiments.tools import UnavailableException, UserException
from simulator.core.engines import ENGINES, make_engine

SHAPES = {"simples-digits": (1, 8, 8), "simples-conv": (1, 28, 28), "simples-cifar": (3, 32, 32)}


def model(name_build, seed: int = 0) -> Model:
    return Model(name_build, Configuration(device="cpu", dtype=torch.float32), init_seed=seed)


def batches(shape, k: int = 3, b: int = 6, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(k, b, *shape, generator=generator), torch.randint(10, (k, b), generator=generator)


def buffers(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: b.clone() for name, b in module.named_buffers()}


def reference(module: nn.Module, inputs, targets):
    """Plain autograd, one worker at a time from the same buffers; buffers end as the average."""
    start, grads, losses, updated = buffers(module), [], [], []
    module.train()
    for x, y in zip(inputs, targets):
        module.load_state_dict(start, strict=False)
        module.zero_grad()
        loss = F.cross_entropy(module(x), y)
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in module.parameters()]))
        losses.append(loss.detach())
        updated.append(buffers(module))
    averaged = {n: torch.stack([u[n] for u in updated]).float().mean(0).to(start[n].dtype) for n in start}
    module.load_state_dict(start, strict=False)
    return torch.stack(grads), torch.stack(losses), averaged


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10))


def cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 10))


def batch_norm_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 16),
                         nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))


def dropout_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))


@pytest.mark.parametrize("build", [mlp, cnn, batch_norm_cnn])
def test_vmap_matches_plain_autograd_one_worker_at_a_time(build):
    torch.manual_seed(0)
    module = build()
    inputs, targets = batches((1, 8, 8), k=4)
    expected_grads, expected_losses, expected_buffers = reference(module, inputs, targets)
    grads, losses = make_engine("vmap", module, F.cross_entropy).gradients(inputs, targets)
    assert grads.shape == (4, sum(p.numel() for p in module.parameters()))
    torch.testing.assert_close(grads, expected_grads, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses, expected_losses)
    for name, value in module.named_buffers():
        torch.testing.assert_close(value, expected_buffers[name])


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("update_buffers", [True, False])
def test_vmap_and_loop_give_the_same_gradients_losses_and_buffers(name, update_buffers):
    inputs, targets = batches(SHAPES[name])
    results = {}
    for engine in ("vmap", "loop"):
        net = model(name)
        before = buffers(net.module)
        grads, losses = make_engine(engine, net, F.cross_entropy).gradients(
            inputs, targets, update_buffers=update_buffers)
        after = buffers(net.module)
        if not update_buffers:
            assert all(torch.equal(before[n], after[n]) for n in before)
        results[engine] = grads, losses, after
    (vg, vl, vb), (lg, ll, lb) = results["vmap"], results["loop"]
    assert vg.shape == (3, model(name).get().numel())
    torch.testing.assert_close(vg, lg, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(vl, ll)
    for n in vb:
        torch.testing.assert_close(vb[n], lb[n])


def test_batch_norm_running_statistics_move_once_per_call():
    net = model("simples-cifar")
    make_engine("vmap", net, F.cross_entropy).gradients(*batches(SHAPES["simples-cifar"], k=5))
    counters = [b for n, b in net.module.named_buffers() if n.endswith("num_batches_tracked")]
    assert counters and all(c.item() == 1 for c in counters)


def test_chunking_over_workers_gives_the_same_gradients():
    net = model("simples-cifar")
    inputs, targets = batches(SHAPES["simples-cifar"], k=5)
    whole = make_engine("vmap", net, F.cross_entropy).gradients(inputs, targets, update_buffers=False)
    chunked = make_engine("vmap", net, F.cross_entropy, chunk_size=2).gradients(inputs, targets, update_buffers=False)
    torch.testing.assert_close(whole, chunked)


def test_engines_compute_in_training_mode_and_restore_the_callers_mode():
    module = batch_norm_cnn()
    inputs, targets = batches((1, 8, 8))
    expected, _, _ = reference(module, inputs, targets)
    module.eval()
    grads, _ = make_engine("vmap", module, F.cross_entropy).gradients(inputs, targets, update_buffers=False)
    torch.testing.assert_close(grads, expected, rtol=1e-5, atol=1e-6)
    assert not module.training


@pytest.mark.parametrize("engine", ENGINES.names())
def test_every_engine_gives_the_reference_gradients_of_an_mlp(engine):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))  # every engine takes it
    inputs, targets = batches((1, 8, 8), k=3)
    expected_grads, expected_losses, _ = reference(module, inputs, targets)
    grads, losses = make_engine(engine, module, F.cross_entropy, probe=(inputs[0], targets[0])).gradients(inputs, targets)
    torch.testing.assert_close(grads, expected_grads, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses, expected_losses)


@pytest.mark.parametrize("engine", ENGINES.names())
def test_dropout_is_reproducible_from_the_seed_and_leaves_the_global_rng_alone(engine):
    net = model(dropout_mlp)
    inputs, targets = (t[:1].expand(3, *t.shape[1:]) for t in batches((1, 8, 8)))  # one batch, three workers
    global_state = torch.get_rng_state()
    probe = (inputs[0], targets[0])  # auto tries vmap on it
    first = make_engine(engine, net, F.cross_entropy, seed=1, probe=probe)
    a1, a2 = first.gradients(inputs, targets)[0], first.gradients(inputs, targets)[0]
    b1 = make_engine(engine, net, F.cross_entropy, seed=1, probe=probe).gradients(inputs, targets)[0]
    c1 = make_engine(engine, net, F.cross_entropy, seed=2, probe=probe).gradients(inputs, targets)[0]
    assert torch.equal(torch.get_rng_state(), global_state)
    assert torch.equal(a1, b1) and not torch.equal(a1, a2) and not torch.equal(a1, c1)
    assert not torch.equal(a1[0], a1[1])  # same batch, different workers: different masks


def test_a_restored_engine_state_replays_the_same_dropout_masks():
    net = model(dropout_mlp)
    inputs, targets = batches((1, 8, 8))
    engine = make_engine("vmap", net, F.cross_entropy, seed=3)
    engine.gradients(inputs, targets)
    state = engine.state_dict()
    expected = engine.gradients(inputs, targets)[0]
    resumed = make_engine("vmap", net, F.cross_entropy, seed=4)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.gradients(inputs, targets)[0], expected)


def test_a_restored_engine_keeps_the_chunk_size_it_started_with():
    net = model(dropout_mlp)
    inputs, targets = batches((1, 8, 8), k=5)
    engine = make_engine("vmap", net, F.cross_entropy, chunk_size=2, seed=3)  # e.g. chosen from a GPU's memory
    state = engine.state_dict()
    expected = engine.gradients(inputs, targets)[0]
    resumed = make_engine("vmap", net, F.cross_entropy, chunk_size=4, seed=3)  # another machine's choice
    resumed.load_state_dict(state)
    assert resumed.chunk_size == 2
    assert torch.equal(resumed.gradients(inputs, targets)[0], expected)


class DataDependent(nn.Module):
    """A branch on the data's value: fine for autograd, impossible under vmap."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        out = self.linear(x.flatten(1))
        return out if out.sum() > 0 else -out


def test_auto_uses_vmap_when_the_probe_passes(caplog):
    net = model("simples-digits")
    inputs, targets = batches((1, 8, 8))
    with caplog.at_level(logging.INFO, logger="byzsim"):
        engine = make_engine("auto", net, F.cross_entropy, probe=(inputs[0], targets[0]))
    assert engine.name == "vmap" and "uses 'vmap'" in caplog.text
    torch.testing.assert_close(engine.gradients(inputs, targets)[0],
                               make_engine("loop", net, F.cross_entropy).gradients(inputs, targets)[0])


def test_auto_falls_back_to_loop_and_logs_why(caplog):
    net = model(DataDependent)
    inputs, targets = batches((1, 8, 8))
    with caplog.at_level(logging.WARNING, logger="byzsim"):
        engine = make_engine("auto", net, F.cross_entropy, probe=(inputs[0], targets[0]))
    assert engine.name == "loop" and "falls back to 'loop'" in caplog.text
    grads, _ = engine.gradients(inputs, targets)
    torch.testing.assert_close(grads, make_engine("loop", net, F.cross_entropy).gradients(inputs, targets)[0])
    with pytest.raises(RuntimeError):
        make_engine("vmap", net, F.cross_entropy).gradients(inputs, targets)


def test_registry_and_errors():
    assert ENGINES.names() == ["auto", "fastest", "grouped", "loop", "vmap"]
    assert all(ENGINES.describe(name) for name in ENGINES.names())
    with pytest.raises(UnavailableException, match="Did you mean 'vmap'"):
        make_engine("vmapp", mlp(), F.cross_entropy)
    with pytest.raises(UserException, match="chunk size"):
        make_engine("vmap", mlp(), F.cross_entropy, chunk_size=0)
    with pytest.raises(UserException, match=r"Engine 'vmap' needs chunk_size >= 1, got vmap\(chunk_size=0\)"):
        make_engine("vmap(chunk_size=0)", mlp(), F.cross_entropy)
    with pytest.raises(ValueError, match="probe"):
        make_engine("auto", mlp(), F.cross_entropy)
    # torchrun is no longer an engine but an execution (execution="torchrun(...)"): make_engine does not know it
    with pytest.raises(UnavailableException, match="Unknown engine 'distributed'"):
        make_engine("distributed", mlp(), F.cross_entropy)
    with pytest.raises(UserException, match="stacked"):
        make_engine("vmap", mlp(), F.cross_entropy).gradients(torch.randn(4, 64), torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("name, shape", [("simples-digits", (1, 8, 8)), ("simples-conv", (1, 28, 28)),
                                         ("simples-full", (1, 28, 28)), ("reference-cnn_mnist", (1, 28, 28)),
                                         ("simples-cifar", (3, 32, 32))])
def test_the_grouped_engine_gives_the_loop_engines_gradients(name, shape):
    """Gradients, local updates, and (simples-cifar) the batch norms' running statistics the calls leave."""
    atol = 1e-6 if name == "simples-cifar" else 2e-7  # a batch norm's backward sums over more terms
    nets = model(name), model(name)
    inputs, targets = batches(shape, k=5, b=7)
    grouped, loop = make_engine("grouped", nets[0], F.cross_entropy), make_engine("loop", nets[1], F.cross_entropy)
    for got, want in zip(grouped.gradients(inputs, targets), loop.gradients(inputs, targets)):
        torch.testing.assert_close(got, want, atol=atol, rtol=1e-5)
    torch.testing.assert_close(buffers(nets[0].module), buffers(nets[1].module))
    g = torch.Generator().manual_seed(1)
    local_inputs = torch.randn(3, 2, 7, *shape, generator=g)
    local_targets = torch.randint(10, (3, 2, 7), generator=g)
    options = dict(lr=0.1, momentum=0.5, l2=1e-3, clip=2.0)
    for got, want in zip(grouped.local_updates(local_inputs, local_targets, **options),
                         loop.local_updates(local_inputs, local_targets, **options)):
        torch.testing.assert_close(got, want, atol=atol, rtol=1e-5)
    torch.testing.assert_close(buffers(nets[0].module), buffers(nets[1].module))
    at = nets[0].get() + 0.01 * torch.randn(5, nets[0].get().numel(), generator=g)  # every worker its own point
    for got, want in zip(grouped.gradients(inputs, targets, at=at), loop.gradients(inputs, targets, at=at)):
        torch.testing.assert_close(got, want, atol=atol, rtol=1e-5)
    torch.testing.assert_close(buffers(nets[0].module), buffers(nets[1].module))


def test_the_grouped_batch_norm_moves_each_workers_statistics_by_its_own_batch():
    """By hand: worker i's running mean moves by momentum * (its batch mean - the running mean), then averages."""
    net = model("simples-cifar")
    inputs, targets = batches((3, 32, 32), k=2, b=4)
    inputs[1] += 3.0  # the second worker's batch has another mean
    bn = net.module[1]
    before = bn.running_mean.clone()
    make_engine("grouped", net, F.cross_entropy).gradients(inputs, targets)
    conv = net.module[0]
    means = torch.stack([conv(x).mean(dim=(0, 2, 3)) for x in inputs]).detach()
    torch.testing.assert_close(bn.running_mean, ((1 - bn.momentum) * before + bn.momentum * means).mean(dim=0))
    assert int(bn.num_batches_tracked) == 1
    frozen = {k: v.clone() for k, v in buffers(net.module).items()}
    make_engine("grouped", net, F.cross_entropy).gradients(inputs, targets, update_buffers=False)
    torch.testing.assert_close(buffers(net.module), frozen)


def test_the_grouped_engine_refuses_layers_it_cannot_batch():
    flat_norm = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.Linear(16, 10))
    with pytest.raises(UserException, match="BatchNorm1d"):
        make_engine("grouped", flat_norm, F.cross_entropy)
    cumulative = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, momentum=None), nn.Flatten(),
                               nn.Linear(144, 10))
    with pytest.raises(UserException, match="cumulative average"):
        make_engine("grouped", cumulative, F.cross_entropy)


class Residual(nn.Module):
    """A ResNet's shape in small: a residual block with batch norms, average pooling, flatten, linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.conv, self.norm = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(2), nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.norm(self.conv(x)) + x)
        return self.fc(torch.flatten(self.pool(x), 1))


class Concatenating(Residual):
    def forward(self, x):
        x = self.stem(x)
        return self.fc(torch.flatten(self.pool(torch.cat([x, x], dim=1)), 1)[:, :16])


class LinearOnWidth(Residual):
    """Passes the structural check, yet its linear layer reads the image's width: only a run can tell."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return torch.flatten(self.fc(self.stem(x)), 1)  # 4 x 8 x 10 outputs, the first ten of them the classes


def test_the_grouped_engine_runs_a_residual_model_through_its_traced_graph():
    net = Residual()
    twin = Residual()
    twin.load_state_dict(net.state_dict())
    inputs, targets = batches((1, 8, 8), k=4, b=5)
    grouped, loop = make_engine("grouped", net, F.cross_entropy), make_engine("loop", twin, F.cross_entropy)
    assert grouped.graph is not None
    for got, want in zip(grouped.gradients(inputs, targets), loop.gradients(inputs, targets)):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(buffers(net), buffers(twin))
    g = torch.Generator().manual_seed(2)
    local_inputs, local_targets = torch.randn(3, 2, 5, 1, 8, 8, generator=g), torch.randint(10, (3, 2, 5), generator=g)
    for got, want in zip(grouped.local_updates(local_inputs, local_targets, lr=0.1, momentum=0.5),
                         loop.local_updates(local_inputs, local_targets, lr=0.1, momentum=0.5)):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(buffers(net), buffers(twin))


def test_the_grouped_engine_refuses_graphs_that_would_mix_workers():
    class Branching(Residual):
        def forward(self, x):
            out = super().forward(x)
            return out if out.sum() > 0 else -out

    with pytest.raises(UserException, match="calls cat"):
        make_engine("grouped", Concatenating(), F.cross_entropy)
    with pytest.raises(UserException, match="cannot be traced"):
        make_engine("grouped", Branching(), F.cross_entropy)
    engine = make_engine("grouped", LinearOnWidth(), F.cross_entropy)  # structure passes; its first inputs do not
    with pytest.raises(UserException, match="differs from the model's own|fails"):
        engine.gradients(*batches((1, 8, 8), k=2, b=3))
