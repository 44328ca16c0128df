"""Faults a long study meets: files a killed write leaves, bad seeds, unknown names in a catalogue of hundreds."""
import pytest

from experiments.tools import UserException
from simulator import Config, run
from simulator.cli.main import main
from simulator.core.store import CHECKPOINT
from simulator.grid import load_grids


def test_a_resumed_run_and_a_finished_one_leave_no_temporary_file(small, monkeypatch):
    from simulator.core.simulation import Simulation

    config = small(steps=20, checkpoint_every=10)
    original = Simulation.step

    def dying(self):
        if self.t == 15:
            raise RuntimeError("killed")
        return original(self)

    monkeypatch.setattr(Simulation, "step", dying)
    with pytest.raises(RuntimeError):
        run(config, progress=False)
    folder = config.folder()
    assert (folder / CHECKPOINT).exists()
    stale = folder / f".{CHECKPOINT}.x1y2z3.tmp"  # what a write killed between its write and its rename leaves
    stale.write_bytes(b"half a checkpoint")
    monkeypatch.setattr(Simulation, "step", original)
    run(config, progress=False)
    assert not stale.exists() and not list(folder.glob(".*.tmp"))


def test_negative_seeds_are_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "g.toml").write_text('dataset = "digits"\nseeds = [-1, 2]\n')
    with pytest.raises(UserException, match="seed must be non-negative, got -1"):
        load_grids(tmp_path / "g.toml")
    assert main(["train", "--seed", "-1", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "seed must be non-negative" in err and err.count("\n") == 1


def test_an_unknown_model_is_one_short_line(tmp_path, capsys):
    assert main(["train", "--model", "resnet1800", "--output", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 1000 and "Did you mean" in err and "in all" in err


def test_a_config_names_its_rule_as_written_so_multikrum_and_its_resolved_m_are_two_runs():
    """At n = 11, f = 2, multikrum averages n - f = 9 vectors, as multikrum(m=9) does; the ids hash the spec as
    written (m follows n - f when the spec leaves it out), so the two are different experiments at other n."""
    assert Config(aggregator="multikrum").run_id() != Config(aggregator="multikrum(m=9)").run_id()


@pytest.mark.parametrize("options, words", [
    (["--threads", "0"], "--threads must be at least 1"),
    (["--threads", "-1", "--jobs", "2"], "--threads must be at least 1"),
    (["--records", "AFILE"], "cannot take files"),
])
def test_runner_options_are_checked_before_any_run(tmp_path, capsys, options, words):
    (tmp_path / "g.toml").write_text('dataset = "digits"\nsteps = 2\neval_every = 2\n')
    (tmp_path / "afile").write_text("")
    options = [str(tmp_path / "afile") if o == "AFILE" else o for o in options]
    assert main(["grid", str(tmp_path / "g.toml"), "--output", str(tmp_path / "o"), "--quiet", *options]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_reproduce_refuses_an_unknown_dataset_before_any_run(tmp_path, capsys):
    assert main(["reproduce", "krum", "--quick", "--dataset", "nosuch", "--output", str(tmp_path / "o"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Unknown dataset 'nosuch'" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def _damage(folder, name, how):
    path = folder / name
    data = path.read_bytes()
    path.write_bytes({"cut": data[: len(data) * 2 // 3], "empty": b"", "object": b"{}", "list": b"[]",
                      "garbled": b"step,accuracy\nfoo,\x00bar\n", "header": data.splitlines(True)[0]}[how])


@pytest.mark.parametrize("name, how", [("metrics.csv", "cut"), ("evaluations.csv", "garbled"),
                                       ("evaluations.csv", "header"), ("summary.json", "cut"),
                                       ("summary.json", "object"), ("config.json", "list")])
def test_a_finished_run_with_a_damaged_file_is_recomputed_and_a_report_names_the_file(small, tmp_path, capsys,
                                                                                      name, how):
    config = small(steps=20, checkpoint_every=10)
    first = run(config, progress=False)
    _damage(first.folder, name, how)
    assert main(["report", str(first.folder.parent), "--output", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert name in err and "run it again" in err and err.count("\n") == 1
    if name != "config.json":  # the run recomputes its files from its last checkpoint, the same as before
        again = run(config, progress=False)
        assert again.evaluations == first.evaluations and again.summary["final_accuracy"] == first.final_accuracy


@pytest.mark.parametrize("how", ["cut", "empty", "garbled"])
def test_a_damaged_checkpoint_is_one_line_naming_it(small, capsys, how):
    config = small(steps=20, checkpoint_every=10)
    folder = run(config, progress=False).folder
    (folder / "summary.json").unlink()
    _damage(folder, CHECKPOINT, how)
    assert main(["train", "--config", str(folder / "config.json"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt" in err and "delete it to restart" in err and err.count("\n") == 1


def test_a_report_reads_each_run_once_whatever_folders_hold_it(small, tmp_path, caplog):
    import shutil

    from simulator.report import load

    for seed in (1, 2):
        run(small(seed=seed, steps=10, eval_every=10), progress=False)
    runs = tmp_path / "runs"
    shutil.copytree(runs, tmp_path / "parent" / "a")
    shutil.copytree(runs, tmp_path / "parent" / "b")
    design = load(tmp_path / "parent")
    assert design.runs == 2 and [g.seeds for g in design.groups] == [(1, 2)]
    assert "repeat a run id" in caplog.text
