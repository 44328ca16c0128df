"""The `byzsim` command: train, list, grid, report, and its error handling."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.grammar import parse_mapping, parse_value
from simulator.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def _byzsim(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def test_values_and_mappings_parse_like_a_user_writes_them():
    assert parse_value("5") == 5 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("krum") == "krum" and parse_value("none") is None
    assert parse_mapping("m=5,tau=1e-2, name=x") == {"m": 5, "tau": 0.01, "name": "x"}
    assert parse_mapping('{"z": 1.5}') == {"z": 1.5}


def test_train_runs_and_reports(tmp_path, capsys):
    code = main(["train", "--dataset", "digits", "--nb-workers", "7", "--nb-decl-byz", "1", "--aggregator", "median",
                 "--attack", "alie", "--attack-args", "z=1.5", "--steps", "5", "--eval-every", "5",
                 "--output", str(tmp_path), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "final accuracy" in out
    (folder,) = tmp_path.iterdir()
    config = json.loads((folder / "config.json").read_text())
    assert config["attack"] == "alie(z=1.5)" and "attack_args" not in config and config["aggregator"] == "median"


def test_config_file_is_overridden_by_options(tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps({"nb_workers": 5, "nb_decl_byz": 1, "steps": 50}))
    assert main(["train", "--config", str(tmp_path / "c.json"), "--steps", "3", "--output", str(tmp_path / "o"),
                 "--quiet"]) == 0
    config = json.loads(next((tmp_path / "o").iterdir()).joinpath("config.json").read_text())
    assert config["nb_workers"] == 5 and config["steps"] == 3


@pytest.mark.parametrize("args, words", [
    (["--aggregator", "krun"], "krum"),                          # unknown name, close match suggested
    (["--attack", "nope"], "Unknown attack"),
    (["--aggregator", "krum", "--nb-workers", "5", "--nb-decl-byz", "2"], "n >= 2f + 3"),
    (["--nb-workers", "3", "--nb-decl-byz", "4"], "nb_decl_byz"),
    (["--lr", "-1"], "lr must be positive"),
    (["--lr-schedule", "cosin"], "cosine"),
    (["--engine", "jit"], "Unknown engine"),
    (["--heterogeneity", "dirichlet(alpha=0)"], "alpha"),
    (["--heterogeneity", "noniid"], "Unknown heterogeneity"),
    (["--model", "simples-conv"], "cannot take 'digits' inputs"),         # fails in the first forward pass
    (["--attack", "alie", "--nb-workers", "4", "--nb-decl-byz", "0", "--nb-real-byz", "3"], "alie"),  # at the first attack
    (["--lr-schedule", "step(milestones=[2],factor=-1)"], "factor"),
    (["--lr", "inf"], "finite"),
    (["--aggregator", "krum(generator=1)"], "generator"),
    (["--criterion", "top-1"], "Unknown criterion"),
    (["--criterion-args", "q=5"], "criterion"),
    (["--dataset", "mnist", "--data-root", "EMPTY"], "mnist"),
    (["--model", "simples-nothing"], "simples-nothing"),
    (["--device", "cuda:7"] if not __import__("torch").cuda.is_available() else ["--device", "tpu"], "device"),
])
def test_user_errors_end_with_one_line_and_leave_nothing(tmp_path, capsys, args, words):
    (tmp_path / "empty").mkdir()
    args = [str(tmp_path / "empty") if a == "EMPTY" else a for a in args]
    code = main(["train", "--steps", "3", "--output", str(tmp_path / "out"), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert words.lower() in err.lower()
    assert err.startswith("byzsim: error:") and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_bad_number_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--lr", "fast"])
    assert exit_info.value.code == 2
    assert "--lr" in capsys.readouterr().err


def test_help_lists_the_options():
    result = _byzsim("train", "--help")
    assert result.returncode == 0
    for flag in ("--dataset", "--model", "--aggregator", "--attack", "--nb-workers", "--nb-decl-byz", "--nb-real-byz",
                 "--batch-size", "--steps", "--lr", "--momentum", "--momentum-at", "--heterogeneity", "--eval-every",
                 "--seed", "--device", "--engine", "--output", "--config", "--aggregator-args", "--attack-args"):
        assert flag in result.stdout


def test_list_names_every_catalogue(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for section in ("aggregators:", "attacks:", "models:", "datasets:", "heterogeneity:", "engines:"):
        assert section in out
    for name in ("krum", "alie", "digits", "simples-conv", "dirichlet", "vmap"):
        assert name in out


def test_python_m_simulator_is_the_command_and_errors_exit_nonzero(tmp_path):
    result = _byzsim("train", "--aggregator", "nope", "--output", str(tmp_path / "o"), "--quiet")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "Unknown aggregator" in result.stderr


def test_report_aggregates_seeds_and_errors_on_empty_folder(tmp_path, capsys):
    for seed in (1, 2):
        assert main(["train", "--steps", "4", "--eval-every", "2", "--seed", str(seed), "--output",
                     str(tmp_path / "runs"), "--quiet"]) == 0
    assert main(["report", str(tmp_path / "runs"), "--output", str(tmp_path / "fig")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1].endswith("report.md") and (tmp_path / "fig" / "report.md").exists()
    table = (tmp_path / "fig" / "table.csv").read_text().splitlines()
    assert len(table) == 2  # one group of two seeds
    (tmp_path / "nothing").mkdir()
    assert main(["report", str(tmp_path / "nothing"), "--output", str(tmp_path / "fig2")]) == 2
    assert "finished run" in capsys.readouterr().err


def test_wrong_types_in_a_config_file_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps({"nb_workers": "10"}))
    assert main(["train", "--config", str(tmp_path / "c.json"), "--output", str(tmp_path / "o"), "--quiet"]) == 2
    assert "parameter 'nb_workers' must be a whole number" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_output_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert main(["train", "--steps", "2", "--output", str(tmp_path / "afile"), "--quiet"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_list_rejects_an_unknown_section(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["list", "agregators"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_the_example_grids_expand(capsys):
    from pathlib import Path

    examples = sorted((Path(__file__).parents[2] / "examples").glob("*.toml"))
    assert {p.stem for p in examples} >= {"demo", "matrix", "f_heterogeneity", "byzfl"}
    for path in examples:
        assert main(["grid", str(path), "--list", "--output", "/nonexistent/out"]) == 0, path
    assert "runs" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["train"], ["grid", "g.toml"], ["reproduce", "krum"], ["report", "."]])
def test_an_abbreviated_option_is_refused_not_guessed(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, {"train": "--nb-worker", "grid": "--job", "reproduce": "--qui", "report": "--metr"}[command[0]],
              "3"])
    assert exit_info.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_the_package_declares_its_license_as_an_spdx_string():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"  # the table form is deprecated by setuptools (77+)
    assert "setuptools>=77" in project["build-system"]["requires"][0]


def test_every_readme_command_names_a_program_that_the_two_setup_commands_install():
    """A newcomer types the README's commands as written: byzsim and torchrun live in .venv/bin, not on PATH."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    commands = [line for block in blocks for line in block.splitlines() if line and not line.startswith((" ", "#"))]
    assert commands
    for line in commands:
        program = next(word for word in line.split() if "=" not in word)  # past VAR=value prefixes
        assert program == "make" or program.startswith(".venv/bin/"), line


def test_train_takes_a_toml_config(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('aggregator = "median"\nattack = "alie(z=1.5)"\nnb_workers = 7\nnb_decl_byz = 1\nsteps = 3\n'
                      'eval_every = 3\nmomentum = 0.5\n')
    assert main(["train", "--config", str(config), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    (folder,) = (tmp_path / "out").iterdir()
    saved = json.loads((folder / "config.json").read_text())
    assert (saved["aggregator"], saved["attack"], saved["nb_workers"], saved["momentum"]) == ("median", "alie(z=1.5)",
                                                                                               7, 0.5)
    config.write_text("steps = [3\n")
    assert main(["train", "--config", str(config), "--quiet"]) == 2
    assert "is not valid TOML" in capsys.readouterr().err


def test_a_runs_config_json_reruns_under_the_output_given_not_beside_the_original(tmp_path):
    assert main(["train", "--steps", "3", "--eval-every", "3", "--output", str(tmp_path / "a"), "--quiet"]) == 0
    (first,) = (tmp_path / "a").iterdir()
    saved = json.loads((first / "config.json").read_text())
    assert "output" not in saved  # the folder is where it is
    assert main(["train", "--config", str(first / "config.json"), "--output", str(tmp_path / "b"), "--quiet"]) == 0
    (second,) = (tmp_path / "b").iterdir()
    assert second.name == first.name  # the same experiment, run again elsewhere
    assert (second / "evaluations.csv").read_text() == (first / "evaluations.csv").read_text()


@pytest.mark.parametrize("threads", [1, 2])
def test_train_threads(tmp_path, threads):
    import torch
    before = torch.get_num_threads()
    try:
        assert main(["train", "--steps", "2", "--eval-every", "2", "--threads", str(threads),
                     "--output", str(tmp_path), "--quiet"]) == 0
        (folder,) = tmp_path.iterdir()
        assert json.loads((folder / "summary.json").read_text())["torch_threads"] == threads
    finally:
        torch.set_num_threads(before)


def test_train_threads_default_is_one_and_negative_is_refused(capsys):
    from simulator.cli.main import build_parser
    assert build_parser().parse_args(["train"]).threads == 1
    assert main(["train", "--threads", "-1"]) == 2
    assert "--threads" in capsys.readouterr().err
