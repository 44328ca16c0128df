"""Private runs end to end: privacy off is the run it always was, resume, refusals, the catalogue, the report."""
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from experiments.tools import UserException
from simulator import Config, run
from simulator.cli.catalogue import catalogue
from simulator.cli.main import main
from simulator.core.engines import Engine, make_engine
from simulator.core.privacy import PRIVACY
from simulator.core.privacy.dpsgd import _check_layers
from simulator.core.store import CHECKPOINT
from simulator.report import write_report

BEFORE = Path(__file__).parent / "data" / "before_privacy.json"


def _without_time(rows):
    return [{k: v for k, v in row.items() if k != "step_time"} for row in rows]


def _params(result):
    return torch.load(result.folder / CHECKPOINT, weights_only=False)["module"]


# ------------------------------------------------------------------ privacy off
def test_runs_without_privacy_repeat_the_numbers_recorded_before_privacy_existed(tmp_path, monkeypatch):
    """Metrics and evaluations of three short runs (grouped engine; vmap with worker momentum, clipping and label
    flipping; federated rounds with a pool and Adam) recorded by the code before privacy, one torch thread."""
    configs = {
        "grouped": dict(aggregator="median", attack="alie", nb_workers=9, nb_decl_byz=2, steps=12, eval_every=4),
        "vmap-mom": dict(aggregator="krum", attack="labelflip", nb_workers=9, nb_decl_byz=2, steps=12, eval_every=4,
                         engine="vmap", momentum=0.9, momentum_at="worker", clip=2.0, l2=1e-4),
        "fed": dict(aggregator="nnm>cclip", attack="ipm", clients=12, participation=0.5, nb_real_byz=2,
                    nb_decl_byz=1, local_steps=3, steps=6, eval_every=3, server_opt="adam(lr=0.01)"),
    }
    recorded = json.loads(BEFORE.read_text())
    monkeypatch.setattr(Engine, "clipped_gradients", lambda *a, **k: pytest.fail("a per-sample pass ran"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, fields in configs.items():
            config = Config(dataset="digits", output=str(tmp_path), **fields)
            assert config.run_id() == recorded[name]["run_id"]
            result = run(config, progress=False)
            assert _without_time(result.metrics) == recorded[name]["metrics"], name
            assert result.evaluations == recorded[name]["evaluations"], name
            assert "epsilon" not in result.summary and "epsilon" not in result.evaluations[0]
    finally:
        torch.set_num_threads(threads)


def test_privacy_none_is_no_field_of_the_identity(small):
    assert "privacy" not in small().identity()
    assert small(privacy="none").run_id() == small().run_id()
    assert small(privacy="dpsgd").run_id() != small().run_id()
    assert small(privacy="dpsgd(sigma=1)").run_id() == small(privacy="dpsgd").run_id()


# ------------------------------------------------------------------ resume
@pytest.mark.parametrize("privacy, extra", [
    ("dpsgd(sigma=0.8,accountant=rdp)", {}),
    ("dpsgd(accountant=rdp)", dict(clients=10, participation=0.5, local_steps=2, engine="vmap")),
    ("dpfedavg(adaptive=true,sigma=0.5,delta=1e-3,accountant=rdp)", dict(clients=30, participation=0.5,
                                                                         local_steps=2)),
])
def test_a_killed_private_run_resumes_to_the_same_epsilon_and_results(small, tmp_path, killed_at, privacy, extra):
    config = small(privacy=privacy, aggregator="median", attack="alie", **extra)
    reference = run(Config(**{**config.to_dict(), "output": str(tmp_path / "reference")}), progress=False)
    killed_at(config, 6)
    assert torch.load(config.folder() / CHECKPOINT, weights_only=False)["t"] == 4
    resumed = run(config, progress=False)
    assert resumed.evaluations == reference.evaluations  # epsilon at every evaluation included
    assert resumed.summary["epsilon"] == reference.summary["epsilon"]
    assert resumed.summary["privacy"] == reference.summary["privacy"]
    assert _without_time(resumed.metrics) == _without_time(reference.metrics)
    assert all(torch.equal(_params(resumed)[k], _params(reference)[k]) for k in _params(reference))


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("args, words", [
    (["--privacy", "dpsgd(sigma=0)"], "needs sigma > 0"),
    (["--privacy", "dpsgd(clip=-1)"], "needs clip > 0"),
    (["--privacy", "dpfedavg(sigma=-0.5)"], "needs sigma > 0"),
    (["--privacy", "dpfedavg(clip=0)"], "needs clip > 0"),
    (["--privacy", "dpsgd(delta=0.01)"], "delta below 1/N"),
    (["--privacy", "dpfedavg(delta=0.2)"], "delta below 1/N = 0.143"),
    (["--privacy", "dpsgd(epsilon=0.05,accountant=rdp)"], "cannot reach epsilon=0.05"),
    (["--privacy", "dpsgd(sigma=2,epsilon=3)"], "sigma or a target epsilon"),
    (["--privacy", "dpfedavg(adaptive=true,sigma=1,delta=1e-3)"], "sigma below 2 count_std"),
    (["--privacy", "dpsgd", "--batch-size", "400"], "smallest holds"),
    (["--privacy", "dpsgd(attack_sees=clean)", "--momentum", "0.9", "--momentum-at", "worker"], "past noise"),
    (["--privacy", "dpsgd", "--local-steps", "2", "--local-batches", "same"], "local_batches fresh"),
    (["--privacy", "laplace"], "privacy mechanism 'laplace'"),
])
def test_bad_privacy_ends_with_one_line_and_leaves_nothing(tmp_path, capsys, args, words):
    code = main(["train", "--nb-workers", "7", "--nb-decl-byz", "1", "--steps", "3", "--output",
                 str(tmp_path / "out"), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert words.lower() in err.lower(), err
    assert err.startswith("byzsim: error:") and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_privacy_under_torchrun_is_refused(small):
    with pytest.raises(UserException, match="privacy runs in one process"):
        small(privacy="dpsgd", execution="torchrun").validate()


def test_a_model_with_batch_norm_is_refused_naming_the_layer():
    module = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(72, 10))
    probe = torch.randn(2, 1, 8, 8), torch.tensor([0, 1])
    for name in ("grouped", "vmap", "loop"):
        with pytest.raises(UserException, match="this model has BatchNorm2d.*vmap and loop engines"):
            _check_layers(make_engine(name, module, torch.nn.functional.cross_entropy, probe=probe), probe, "dpsgd")


def test_a_model_the_vmap_pass_cannot_take_is_sent_to_the_loop_engine():
    class Branching(nn.Module):  # a branch on the data: torch.func cannot map it
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(64, 10)

        def forward(self, x):
            x = x.flatten(1)
            return self.linear(x) if x.sum().item() > -1e9 else -self.linear(x)

    probe = torch.randn(2, 1, 8, 8), torch.tensor([0, 1])
    engine = make_engine("vmap", Branching(), torch.nn.functional.cross_entropy)
    state = engine.generator.get_state()
    with pytest.raises(UserException, match="vmap engine's per-sample pass fails.*--engine loop"):
        _check_layers(engine, probe, "dpsgd")
    assert torch.equal(engine.generator.get_state(), state)  # the check draws nothing of the run's
    _check_layers(make_engine("loop", Branching(), torch.nn.functional.cross_entropy), probe, "dpsgd")


def test_without_opacus_a_private_run_says_how_to_install_it(small, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "opacus", None)  # `import opacus...` now raises ImportError
    monkeypatch.setitem(sys.modules, "opacus.accountants", None)
    config = small(privacy="dpsgd")
    with pytest.raises(UserException, match=r"needs Opacus.*pip install 'byzsim\[privacy\]'"):
        run(config, progress=False)
    assert not config.folder().exists()
    run(small(steps=2), progress=False)  # runs without privacy need nothing


# ------------------------------------------------------------------ catalogue and report
def test_byzsim_list_shows_the_privacy_mechanisms_with_their_parameters():
    listed = dict(catalogue()["privacy"])
    assert set(listed) == {"none", "dpsgd", "dpfedavg"}
    assert "clip=1.0, sigma=1.0, delta=1e-05" in listed["dpsgd"] and "adaptive=false" in listed["dpfedavg"]


def test_the_report_shows_accuracy_against_epsilon(small, tmp_path):
    for sigma in (0.8, 2.0):
        run(small(privacy=f"dpsgd(sigma={sigma},accountant=rdp)", steps=4), progress=False)
    run(small(steps=4), progress=False)
    write_report(tmp_path / "runs", tmp_path / "report", formats=("png",), diagnostics=False)
    page = (tmp_path / "report" / "report.md").read_text()
    section = page[page.index("## Privacy: accuracy against epsilon"):]
    rows = [line.split("|") for line in section.splitlines() if "| average |" in line]
    assert [row[1].strip() for row in rows] == ["dpsgd(sigma=2.0,accountant=rdp)", "dpsgd(sigma=0.8,accountant=rdp)"]
    assert float(rows[0][-2]) < float(rows[1][-2])  # sorted by epsilon: more noise, less spent
    assert "epsilon_mean" in (tmp_path / "report" / "table.csv").read_text().splitlines()[0]


def test_an_in_place_output_is_refused_by_the_grouped_engine_before_the_run():
    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.linear = nn.Conv2d(1, 2, 3), nn.Linear(72, 10)

        def forward(self, x):
            return self.linear(torch.flatten(torch.nn.functional.relu(self.conv(x), inplace=True), 1))

    probe = torch.randn(2, 1, 8, 8), torch.tensor([0, 1])
    with pytest.raises(UserException, match="dpsgd: The grouped engine's per-sample clipping.*--engine vmap"):
        _check_layers(make_engine("grouped", InPlace(), torch.nn.functional.cross_entropy), probe, "dpsgd")
    _check_layers(make_engine("vmap", InPlace(), torch.nn.functional.cross_entropy), probe, "dpsgd")


@pytest.mark.parametrize("name", ["dpsgd", "dpfedavg"])
def test_every_numeric_parameter_refuses_zero_negative_and_infinite_values(name):
    for key in ("clip", "sigma", "delta", "epsilon", *(("clip_lr", "count_std") if name == "dpfedavg" else ())):
        for value in (0.0, -1.0, float("inf"), float("nan")):
            with pytest.raises(UserException, match=f"'{name}'.*{key}"):
                PRIVACY.build(f"{name}({key}={value})")
