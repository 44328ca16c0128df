"""The default engine `fastest`: chosen from the model's layers and the device; earlier `auto` runs kept by grids."""
import dataclasses
import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from simulator.core.config import Config
from simulator.core.engines import ENGINES, FASTEST, make_engine
from simulator.core.engines.previous import keep_previous_runs, twin
from simulator.core.simulation import Simulation
from simulator.grid import load_grids, run_grid
from simulator.grid.runner import prepare


def conv() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 10))


def batch_norm_conv() -> nn.Module:
    """A layer the grouped engine cannot batch: a batch norm over the flattened features."""
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.BatchNorm1d(144), nn.Linear(144, 10))


class DataDependent(nn.Module):
    """A branch on the data's value: fine for autograd, impossible under vmap."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        out = self.linear(x.flatten(1))
        return out if out.sum() > 0 else -out


PROBE = (torch.randn(2, 1, 8, 8), torch.tensor([0, 1]))


def test_the_default_engine_is_fastest_and_auto_keeps_its_meaning():
    assert Config().engine == "fastest" and Config().identity()["engine"].startswith("fastest(")
    assert ENGINES.names() == ["auto", "fastest", "grouped", "loop", "vmap"]
    assert make_engine("auto", conv(), F.cross_entropy, probe=PROBE).name == "vmap"  # as before


def test_fastest_takes_grouped_from_the_layers_alone(caplog):
    """No probe batch, nothing run: a supported sequence of layers is enough."""
    with caplog.at_level(logging.INFO, logger="byzsim"):
        engine = make_engine("fastest", conv(), F.cross_entropy, probe=None)
    assert engine.name == "grouped" and "uses 'grouped' on cpu" in caplog.text


def test_fastest_takes_vmap_for_a_model_grouped_cannot_take_and_says_why(caplog):
    with caplog.at_level(logging.INFO, logger="byzsim"):
        engine = make_engine("fastest", batch_norm_conv(), F.cross_entropy, probe=PROBE)
    assert engine.name == "vmap" and "not 'grouped': this model has BatchNorm1d" in caplog.text
    # a loss without torch's reduction argument is a structural reason too
    assert make_engine("fastest", conv(), lambda out, y: F.cross_entropy(out, y), probe=PROBE).name == "vmap"


class Doubling(nn.Sequential):
    """Supported layers, but a forward of its own that the grouped pass would not see."""

    def forward(self, x):
        return super().forward(2 * x)


@pytest.mark.parametrize("module, reason", [
    (Doubling(nn.Flatten(), nn.Linear(64, 10)), "differs from the model's own"),
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.LogSoftmax(dim=0)), "LogSoftmax is not over the classes"),
    (nn.Sequential(nn.Flatten(start_dim=2), nn.Linear(8, 10)), "flattens other dimensions"),
])
def test_fastest_leaves_grouped_where_its_pass_would_not_be_the_models(module, reason, caplog):
    with caplog.at_level(logging.INFO, logger="byzsim"):
        engine = make_engine("fastest", module, F.cross_entropy, probe=PROBE)
    assert engine.name != "grouped" and reason in caplog.text


def test_fastest_falls_back_to_loop_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="byzsim"):
        engine = make_engine("fastest", DataDependent(), F.cross_entropy, probe=PROBE)
    assert engine.name == "loop" and "falls back to 'loop'" in caplog.text and "vmap failed" in caplog.text


def test_the_order_per_device_is_fixed():
    """A run id hashes the name `fastest`, not this table: changing it needs a new name (docs/engines.md)."""
    assert FASTEST == {"cpu": ("grouped", "vmap", "loop"), "cuda": ("vmap", "grouped", "loop")}
    assert ENGINES.build("fastest").order(torch.device("meta")) == ("vmap", "loop")


def test_a_run_with_no_engine_named_uses_the_fastest_engine(tmp_path):
    sim = Simulation(Config(dataset="digits", nb_workers=5, nb_decl_byz=1, steps=1, output=str(tmp_path)))
    assert sim.workers.name == "grouped"
    cifar_shaped = Config(dataset="digits", model="simples-cifar", nb_workers=5, nb_decl_byz=1, output=str(tmp_path))
    assert cifar_shaped.identity()["engine"] == Config().identity()["engine"]  # the id names the rule, not its pick


def test_fastest_and_auto_are_different_runs():
    assert Config(engine="fastest").run_id() != Config(engine="auto").run_id()
    assert twin(Config(engine="fastest(chunk_size=4)")).engine == "auto(chunk_size=4)"
    assert twin(Config(engine="vmap")) is None


GRID = '''dataset = "digits"
nb_workers = 7
nb_decl_byz = 1
steps = 4
eval_every = 2
checkpoint_every = 2
aggregator = ["median", "krum"]
seeds = 1
'''


@pytest.fixture
def grid(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(GRID)
    return load_grids(path)["small"]


def test_a_grid_keeps_the_runs_its_cells_made_under_auto(grid, tmp_path, finished_run, caplog, monkeypatch):
    """A cell run when auto was the default is not run again under fastest: it keeps that run and its engine."""
    out = tmp_path / "out"
    median, krum = (dataclasses.replace(c, output=str(out)) for c in grid.configs)
    earlier = finished_run(twin(median), [0.1, 0.7])  # what the cell ran before fastest was the default
    with caplog.at_level(logging.WARNING, logger="byzsim"):
        configs = prepare(grid, out)
    assert [c.engine for c in configs] == ["auto", "fastest"]
    assert configs[0].run_id() == earlier.name and configs[1].run_id() == krum.run_id()
    assert "1 run(s)" in caplog.text and "'auto'" in caplog.text
    ran = []
    original = Simulation.__init__

    def recording(self, config, *args, **kwargs):
        ran.append(config.engine)
        original(self, config, *args, **kwargs)

    monkeypatch.setattr(Simulation, "__init__", recording)
    outcome = run_grid(grid, out, progress=False)
    assert (outcome.done, outcome.skipped) == (1, 1) and ran == ["fastest"]


def test_a_grid_keeps_the_records_its_cells_made_under_auto(grid, tmp_path, finished_run):
    records = tmp_path / "records"
    recorded = finished_run(dataclasses.replace(twin(grid.configs[1]), output=str(records)), [0.2, 0.6])
    kept = keep_previous_runs(grid.configs, records=[records])
    assert [c.engine for c in kept] == ["fastest", "auto"] and kept[1].run_id() == recorded.name


class Residual(nn.Module):
    """A residual block: the grouped engine takes it through a traced graph, `fastest` does not (no faster)."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 1, 3, padding=1), nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)) + x, 1))


def test_fastest_leaves_the_traced_graph_to_an_explicit_choice(caplog):
    with caplog.at_level(logging.INFO, logger="byzsim"):
        engine = make_engine("fastest", Residual(), F.cross_entropy, probe=PROBE)
    assert engine.name == "vmap" and "traced graph, no faster than vmap" in caplog.text
    assert make_engine("grouped", Residual(), F.cross_entropy).graph is not None
