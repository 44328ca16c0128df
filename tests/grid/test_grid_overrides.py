"""KEY=VALUE overrides of a grid file: read like a grid's values, set in every grid of the file (a list sweeps,
replacing the file's own list), checked like the file's keys, and shown by --list."""
import json

import pytest

from experiments.tools import UserException
from simulator.cli.main import main
from simulator.grid import load_grids
from simulator.grid.spec import parse_overrides

GRID = '''[defaults]
dataset = "digits"
nb_workers = 9
steps = 5
aggregator = ["average", "trmean"]
attack = ["none", "alie"]

[grids.small]
seed = 3

[grids.large]
nb_workers = 13
[[grids.large.cases]]
nb_decl_byz = 1
[[grids.large.cases]]
nb_decl_byz = 2
steps = 7
'''


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(GRID)
    return path


def _combos(grid, *fields):
    return [tuple(getattr(c, f) for f in fields) for c in grid.configs]


def test_words_read_as_grid_values_lists_and_specs():
    assert parse_overrides(["steps=100", "seeds=2", 'aggregator=["krum","median"]', "lr=1e-3", "known_f=true",
                            "attack=none", "nb_real_byz=none"]) == {
        "steps": 100, "seeds": 2, "aggregator": ["krum", "median"], "lr": 0.001, "known_f": True,
        "attack": "none", "nb_real_byz": None}
    assert parse_overrides(["aggregator=nnm>cclip(tau=5)", "attack='ipm(epsilon=10)'"]) == {
        "aggregator": "nnm>cclip(tau=5)", "attack": "ipm(epsilon=10)"}


@pytest.mark.parametrize("words, message", [
    (["steps"], "Expected KEY=VALUE"),
    (["=3"], "Expected KEY=VALUE"),
    (["steps=1", "steps=2"], "given twice"),
    (["aggregator=[krum]"], "Cannot read '\\[krum\\]'"),
    (["aggregator=a b"], "Cannot read the value of 'aggregator=a b'"),
])
def test_malformed_words_are_one_error(words, message):
    with pytest.raises(UserException, match=message):
        parse_overrides(words)


def test_an_override_replaces_the_key_in_every_grid_and_a_list_sweeps(path):
    grids = load_grids(path, {"steps": 11, "aggregator": ["krum", "median"], "seeds": 2})
    assert _combos(grids["small"], "aggregator", "attack", "seed", "steps") == [
        (a, t, s, 11) for a in ("krum", "median") for t in ("none", "alie") for s in (1, 2)]
    large = grids["large"]  # the override wins over the cases' own steps too
    assert {c.steps for c in large.configs} == {11} and {c.nb_workers for c in large.configs} == {13}
    assert {(c.aggregator, c.nb_decl_byz) for c in large.configs} == {
        (a, f) for a in ("krum", "median") for f in (1, 2)}
    assert "g.toml steps=11 aggregator=" in grids["small"].summary()


def test_without_overrides_the_file_is_as_written(path):
    grids = load_grids(path)
    assert _combos(grids["small"], "aggregator", "seed") == [("average", 3), ("average", 3), ("trmean", 3),
                                                              ("trmean", 3)]
    assert {c.steps for c in grids["large"].configs} == {5, 7}


@pytest.mark.parametrize("overrides, message", [
    ({"stpes": 100}, r"g.toml \(overrides\): unknown key 'stpes' .*Did you mean 'steps'\?"),
    ({"nb_wrokers": 3}, "Did you mean 'nb_workers'"),
    ({"include": 1}, "unknown key 'include'"),
    ({"lr": "fast"}, "key 'lr'.*must be a number"),
    ({"output": "x"}, "set by the runner"),
    ({"aggregator": []}, "the grid is empty"),
])
def test_overrides_are_checked_like_the_files_keys(path, overrides, message):
    with pytest.raises(UserException, match=message):
        load_grids(path, overrides)


def test_the_command_takes_overrides_after_the_file_and_lists_the_result(path, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["grid", str(path), "steps=100", "seeds=2", 'aggregator=["krum","median"]', "--grid", "small",
                 "--output", out, "--list", "--json"]) == 0
    captured = capsys.readouterr()
    configs = [json.loads(line)["config"] for line in captured.out.splitlines()]
    assert [(c["aggregator"], c["attack"], c["seed"]) for c in configs] == [
        (a, t, s) for a in ("krum", "median") for t in ("none", "alie") for s in (1, 2)]
    assert {c["steps"] for c in configs} == {100}
    assert "steps=100 seeds=2" in captured.err
    assert main(["grid", str(path), "stpes=100", "--list"]) == 2
    assert "unknown key 'stpes'" in capsys.readouterr().err


def test_the_help_names_the_overrides(capsys):
    with pytest.raises(SystemExit):
        main(["grid", "--help"])
    assert "KEY=VALUE" in capsys.readouterr().out
