"""Grid files: expansion, include/exclude, seeds, named grids, refusals and bad input."""
import pytest

from experiments.tools import UserException
from simulator.grid import load_grids

BASE = 'dataset = "digits"\nnb_workers = 9\nsteps = 5\n'


def grid_of(tmp_path, text, name="g"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    grids = load_grids(path)
    return grids[name] if name in grids else grids


def combos(grid, *fields):
    return [tuple(getattr(c, f) for f in fields) for c in grid.configs]


def test_lists_expand_into_the_cartesian_product_in_file_order(tmp_path):
    grid = grid_of(tmp_path, BASE + 'aggregator = ["median", "krum"]\nattack = ["none", "alie"]\nseeds = 2\n')
    assert combos(grid, "aggregator", "attack", "seed") == [
        (a, t, s) for a in ("median", "krum") for t in ("none", "alie") for s in (1, 2)]
    assert all(c.dataset == "digits" and c.steps == 5 for c in grid.configs)


def test_seeds_as_a_count_or_a_list_and_specs_with_list_parameters(tmp_path):
    assert combos(grid_of(tmp_path, BASE + "seeds = [3, 7]\n"), "seed") == [(3,), (7,)]
    grid = grid_of(tmp_path, BASE + 'lr_schedule = ["step(milestones=[2])", "step(milestones=[3, 4])"]\n')
    assert combos(grid, "lr_schedule") == [("step(milestones=[2])",), ("step(milestones=[3,4])",)]


def test_old_spellings_fold_into_their_spec_with_one_warning(tmp_path, caplog):
    grid = grid_of(tmp_path, BASE + 'lr_schedule = "step"\nlr_milestones = [[2], [3, 4]]\n'
                                    'heterogeneity = "dirichlet"\nalpha = [0.1, 0.5]\n')
    assert combos(grid, "lr_schedule", "heterogeneity") == [
        (f"step(milestones={m})", f"dirichlet(alpha={a})") for m in ("[2]", "[3,4]") for a in (0.1, 0.5)]
    warnings = [r.getMessage() for r in caplog.records if "old spellings" in r.getMessage()]
    assert len(warnings) == 1 and "heterogeneity = 'dirichlet(alpha=0.1)'" in warnings[0]
    single = grid_of(tmp_path, BASE + 'lr_schedule = "step"\nlr_milestones = [2, 3]\n')
    assert combos(single, "lr_schedule") == [("step(milestones=[2,3])",)]


def test_exclude_drops_matches_and_include_adds_sub_grids(tmp_path):
    text = BASE + '''aggregator = ["median", "krum"]
attack = ["none", "alie"]
nb_decl_byz = [1, 3]

[[exclude]]
aggregator = "krum"
attack = ["none"]

[[include]]
aggregator = "bulyan"
nb_decl_byz = 1
'''
    grid = grid_of(tmp_path, text)
    got = combos(grid, "aggregator", "attack", "nb_decl_byz")
    assert ("krum", "none", 1) not in got and ("krum", "alie", 1) in got
    assert [g for g in got if g[0] == "bulyan"] == [("bulyan", "none", 1), ("bulyan", "alie", 1)]
    assert len(got) == 4 + 2 + 2


def test_combinations_a_rule_refuses_are_counted_and_skipped(tmp_path):
    grid = grid_of(tmp_path, BASE + 'aggregator = ["median", "krum", "bulyan"]\nnb_decl_byz = [1, 3]\n')
    assert combos(grid, "aggregator", "nb_decl_byz") == [("median", 1), ("median", 3), ("krum", 1), ("krum", 3),
                                                          ("bulyan", 1)]
    assert grid.refused == {"bulyan requires n >= 4f + 3": 1}
    assert "1 combinations skipped because a rule refuses them: bulyan requires n >= 4f + 3 (1)" in grid.summary()


def test_the_same_run_twice_is_kept_once(tmp_path):
    grid = grid_of(tmp_path, BASE + 'heterogeneity = ["iid", "IID"]\naggregator = ["krum", "Krum"]\n')
    assert len(grid.configs) == 1 and grid.duplicates == 3


def test_several_named_grids_share_defaults(tmp_path):
    text = '''[defaults]
dataset = "digits"
steps = 5

[grids.small]
nb_workers = 7

[grids.large]
nb_workers = [11, 13]
'''
    grids = grid_of(tmp_path, text)
    assert set(grids) == {"small", "large"}
    assert combos(grids["small"], "nb_workers", "steps") == [(7, 5)]
    assert combos(grids["large"], "nb_workers") == [(11,), (13,)]


@pytest.mark.parametrize("text, words", [
    (BASE + "nb_wrokers = 3\n", r"g.toml: unknown key 'nb_wrokers'"),
    (BASE + 'lr = "fast"\n', r"g.toml: key 'lr': Configuration: parameter 'lr' must be a number, got 'fast'"),
    (BASE + "batch_size = [1, 2.5]\n", r"key 'batch_size': Configuration: parameter 'batch_size' must be a whole number"),
    (BASE + "aggregator = []\n", r"g.toml: the grid is empty"),
    (BASE + 'aggregator = ["krum"]\nnb_decl_byz = 4\n', "every combination is refused"),
    (BASE + 'output = "x"\n', "set by the runner"),
    (BASE + "seeds = 0\n", "seeds"),
    (BASE + "seeds = 2\nseed = 1\n", "either seeds or seed"),
    (BASE + 'aggregator = "nope"\n', "Unknown aggregator 'nope'"),
    (BASE + "[[exclude]]\nbogus = 1\n", r"\[\[exclude\]\]: unknown key 'bogus'"),
    (BASE + "lr = [0.1\n", "not valid TOML"),
    ('[grids]\n', "at least one named table"),
    ("# nothing here\n", "sets no field"),
    (BASE + 'nb_decl_byz = 20\n', "nb_decl_byz"),
])
def test_bad_grid_files_are_one_error_naming_the_file_and_key(tmp_path, text, words):
    with pytest.raises(UserException, match=words):
        grid_of(tmp_path, text)


def test_a_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserException, match="does not exist"):
        load_grids(tmp_path / "missing.toml")
