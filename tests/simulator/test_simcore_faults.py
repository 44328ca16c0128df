"""Faults a long study meets: files a killed write leaves, bad seeds, unknown names in a catalogue of hundreds."""
import json

import pytest

from experiments.tools import UserException
from simulator import Config, run
from simulator.cli.main import main
from simulator.core.store import CHECKPOINT, read_csv
from simulator.grid import load_grids


def test_a_resumed_run_and_a_finished_one_leave_no_temporary_file(small, killed_at):
    config = small(steps=20, checkpoint_every=10)
    killed_at(config, 15)
    folder = config.folder()
    assert (folder / CHECKPOINT).exists()
    stale = folder / f".{CHECKPOINT}.x1y2z3.tmp"  # what a write killed between its write and its rename leaves
    stale.write_bytes(b"half a checkpoint")
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
    assert main(["train", "--config", str(folder / "config.json"), "--output", str(folder.parent), "--quiet"]) == 2
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


def test_a_run_that_diverges_stops_at_once_and_says_so_in_one_line_with_status_3(tmp_path, capsys):
    args = ["train", "--dataset", "digits", "--lr", "1e12", "--steps", "30", "--eval-every", "5", "--quiet",
            "--output", str(tmp_path)]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "diverged at step" in err and err.count("\n") == 1
    (folder,) = tmp_path.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["diverged"] is True and summary["steps"] < 30
    assert read_csv(folder / "evaluations.csv")[-1]["step"] == summary["steps"]
    assert main(args) == 3  # finished: the same answer again, nothing rerun


def test_a_diverged_run_is_a_finished_result_in_a_grid_and_its_curve_carries_on_in_the_report(tmp_path):
    from simulator.report import load

    (tmp_path / "g.toml").write_text('dataset = "digits"\nsteps = 30\neval_every = 5\nlr = [0.1, 1e12]\n')
    assert main(["grid", str(tmp_path / "g.toml"), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    design = load(tmp_path / "out")
    assert len(design.diverged) == 1
    for group in design.groups:  # both runs' curves reach the last step, every 5 steps
        assert list(group.steps[-3:]) == [20, 25, 30]
    (summary,) = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*/summary.json")
                  if "diverged" in p.read_text()]
    (broken,) = [g for g in design.groups if g.identity["lr"] == 1e12]
    assert broken.accuracy[0, -1] == summary["broken_evaluation"]["accuracy"]  # what running on would give
