"""Old spellings: flat fields fold into their specs with one line, and `byzsim migrate` renames old runs."""
import json
import logging

import pytest

from simulator.cli.main import main
from simulator.core.config import Config
from simulator.core.migrate import migrate

# A run folder's config.json as byzsim wrote it before every part was a spec (abridged to the fields set).
OLD = {"dataset": "digits", "nb_workers": 7, "nb_decl_byz": 1, "heterogeneity": "dirichlet", "alpha": 0.3,
       "gamma": 0.5, "lr_schedule": "step", "lr_milestones": [20, 10], "lr_gamma": 0.5, "lr_decay": 5000.0,
       "lr_min": 0.0, "server_opt": "sgd", "server_lr": 1.0, "server_betas": [0.9, 0.99], "server_eps": 0.001,
       "engine": "vmap", "chunk_size": 4, "memory_budget": None, "dist_timeout": 300.0, "dist_byzantine": "server",
       "aggregator": "cclip", "aggregator_args": {"tau": 5}, "attack": "alie", "attack_args": {"z": 1.5},
       "model": None, "model_args": {}, "criterion": "top-k", "criterion_args": {"k": 2}}
NEW = dict(dataset="digits", nb_workers=7, nb_decl_byz=1, heterogeneity="dirichlet(alpha=0.3)",
           lr_schedule="step(milestones=[10,20],factor=0.5)", engine="vmap(chunk_size=4)", aggregator="cclip(tau=5)",
           attack="alie(z=1.5)", criterion="top-k(k=2)")


def test_an_old_json_config_loads_as_the_new_spelling_with_one_line(tmp_path, caplog):
    path = tmp_path / "old.json"
    path.write_text(json.dumps(OLD))
    with caplog.at_level(logging.WARNING, logger="byzsim"):
        config = Config.load(path)
    assert config == Config(**NEW)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "old spellings" in line and "heterogeneity = 'dirichlet(alpha=0.3)'" in line and "\n" not in line


def test_fields_the_chosen_part_never_read_are_dropped_silently(caplog):
    with caplog.at_level(logging.WARNING, logger="byzsim"):
        config = Config.from_dict({"heterogeneity": "iid", "alpha": 0.3, "lr_decay": 10.0})
    assert config.heterogeneity == "iid" and config.lr_schedule == "constant" and not caplog.records


def test_the_distributed_engine_becomes_torchrun_execution(caplog):
    with caplog.at_level(logging.WARNING, logger="byzsim"):
        config = Config.from_dict({"engine": "distributed", "dist_timeout": 30.0, "dist_byzantine": "ranks"})
    assert config.engine == "auto" and config.execution == "torchrun(timeout=30.0,byzantine=ranks)"
    assert len(caplog.records) == 1


def _old_run(root, name="digits-cclip-alie-f1-s1-0123456789", summary=True):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({**OLD, "output": str(root)}))
    if summary:
        (folder / "summary.json").write_text(json.dumps({"run_id": name, "final_accuracy": 0.5}))
    return folder


def test_migrate_renames_an_old_run_to_its_current_id_and_rewrites_its_files(tmp_path):
    _old_run(tmp_path)
    done = migrate(tmp_path)
    new = Config(**NEW, output=str(tmp_path)).run_id()
    assert (done.renamed, done.current, done.clashes) == (1, 0, [])
    assert [p.name for p in tmp_path.iterdir()] == [new]
    assert json.loads((tmp_path / new / "config.json").read_text()) == Config(**NEW, output=str(tmp_path)).to_saved()
    assert json.loads((tmp_path / new / "summary.json").read_text()) == {"run_id": new, "final_accuracy": 0.5}
    again = migrate(tmp_path)
    assert (again.renamed, again.current) == (0, 1)


def test_migrate_leaves_a_run_whose_new_id_is_taken_and_the_command_says_so(tmp_path, capsys):
    _old_run(tmp_path)
    migrate(tmp_path)
    _old_run(tmp_path, "digits-cclip-alie-f1-s1-9999999999", summary=False)
    assert main(["migrate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0 runs renamed" in out and "1 already current" in out and "9999999999 ->" in out


def test_migrate_refuses_what_is_not_a_folder_of_runs(tmp_path, capsys):
    assert main(["migrate", str(tmp_path / "nothing")]) == 2
    assert "is not a folder of runs" in capsys.readouterr().err
    _old_run(tmp_path, summary=False)
    (tmp_path / "digits-cclip-alie-f1-s1-0123456789" / "config.json").write_text("{oops")
    with pytest.raises(Exception, match="cannot be migrated"):
        migrate(tmp_path)


def test_a_grid_refuses_old_runs_and_records_until_they_are_migrated(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text('dataset = "digits"\nnb_workers = 7\nnb_decl_byz = 1\nsteps = 2\neval_every = 2\n')
    for where in ("out", "records"):
        _old_run(tmp_path / where)
        args = ["grid", str(grid), "--output", str(tmp_path / "fresh" if where == "records" else tmp_path / where),
                "--quiet", "--records", str(tmp_path / "records" if where == "records" else tmp_path / "r2")]
        assert main(args) == 2
        assert f"byzsim migrate {tmp_path / where}" in capsys.readouterr().err
        migrate(tmp_path / where)


def test_a_run_of_the_old_server_placement_is_aggregate_under_its_id(tmp_path, capsys):
    """Before `server` took ByzantineMomentum's meaning, it was momentum on the aggregate: such a run keeps its id
    (aggregate hashes as the old server did), a grid asking for the new server refuses the folder until it is
    migrated, and migrating rewrites its config.json to aggregate without renaming it."""
    from simulator import run
    fields = dict(dataset="digits", nb_workers=7, nb_decl_byz=1, steps=2, eval_every=2, momentum=0.9)
    old = run(Config(**fields, momentum_at="aggregate", output=str(tmp_path / "out")), progress=False).folder
    data = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**data, "momentum_at": "server"}))  # as the old code wrote it
    grid = tmp_path / "g.toml"
    grid.write_text('dataset = "digits"\nnb_workers = 7\nnb_decl_byz = 1\nsteps = 2\neval_every = 2\n'
                    'momentum = 0.9\nmomentum_at = "server"\n')
    assert main(["grid", str(grid), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    assert "momentum at 'server'" in capsys.readouterr().err
    done = migrate(tmp_path / "out")
    assert (done.renamed, done.clashes) == (1, [])
    assert json.loads((old / "config.json").read_text())["momentum_at"] == "aggregate"
    assert migrate(tmp_path / "out").current == 1
