"""The memory model of the batched engines: per-worker bytes, and the chunk of workers that fits a budget."""
import pytest
import torch
import torch.nn.functional as F

from experiments import Configuration, Model
from simulator import Config
from simulator.core.engines import make_engine
from simulator.core.engines.memory import activation_bytes, chunk_for, default_budget, worker_bytes
from simulator.core.simulation import Simulation


def test_activations_grow_with_the_batch_and_a_worker_adds_two_gradients():
    model = Model("simples-conv", Configuration(device="cpu"), init_seed=0)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(10, (64,))
    small, large = (activation_bytes(model.module, x[:b], y[:b], F.cross_entropy) for b in (16, 64))
    assert 3.5 < large / small < 4.5  # linear in b (up to the parameters autograd also saves)
    d = model.get().numel()
    assert worker_bytes(model.module, x[:16], y[:16], F.cross_entropy) == small + 2 * d * 4


def test_chunk_for_fits_the_budget():
    assert chunk_for(10_000, 1_000, 50) == 10
    assert chunk_for(10_000, 1_000, 4) == 4
    assert chunk_for(10, 1_000, 50) == 1  # never zero: one worker at a time at worst
    assert default_budget(torch.device("cpu"), None) is None
    assert default_budget(torch.device("cpu"), 2.0) == 2 * 2**30


def test_a_memory_budget_sets_the_chunk_size_and_an_explicit_one_wins(tmp_path):
    base = dict(dataset="digits", nb_workers=30, nb_decl_byz=2, output=str(tmp_path))
    per_worker = worker_bytes(Model("simples-digits", Configuration(device="cpu"), init_seed=0).module,
                              torch.randn(32, 1, 8, 8), torch.randint(10, (32,)), F.cross_entropy)
    budget = 7.5 * per_worker / 2**30
    assert Simulation(Config(**base, engine=f"vmap(memory_budget={budget!r})")).engine.chunk_size == 7
    assert Simulation(Config(**base, engine=f"vmap(chunk_size=3,memory_budget={budget!r})")).engine.chunk_size == 3
    assert Simulation(Config(**base, engine="vmap")).engine.chunk_size is None  # CPU, no budget: all workers at once


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_the_model_predicts_the_peak_memory_of_the_vmap_engine_on_a_gpu():
    model = Model("simples-conv", Configuration(device="cuda"), init_seed=0)
    x = torch.randn(100, 32, 1, 28, 28, device="cuda")
    y = torch.randint(10, (100, 32), device="cuda")
    engine = make_engine("vmap", model, F.cross_entropy)
    per_worker = worker_bytes(model.module, x[0], y[0], F.cross_entropy)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    engine.gradients(x, y)
    used = torch.cuda.max_memory_allocated() - base
    assert 0.5 * 100 * per_worker < used < 2.0 * 100 * per_worker
