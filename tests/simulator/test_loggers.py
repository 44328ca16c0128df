"""Loggers: TensorBoard, W&B and MLflow copies of a run's rows, off by default, resumed without repeating steps.

The logger-independent behaviour (what reaches a logger, resuming, the options, a missing package) is
tested with a recording logger; each tracker's test reads back what its store holds, and is skipped
when its package is not installed.
"""
import dataclasses
import importlib.util
import math
import time
from pathlib import Path

import pytest

from experiments.tools import UnavailableException, UserException
from simulator import run
from simulator.cli.main import main
from simulator.core.loggers import LOGGERS, Logger, build_loggers, parse_loggers
from simulator.core.simulation import Simulation
from simulator.core.store import EVALS, METRICS, read_csv
from simulator.grid import load_grids, run_grid


class Recorder(Logger):
    """A logger keeping its calls in a list that outlives one sitting, like a tracker's store."""

    name = "recorder"

    def __init__(self, store: list | None = None) -> None:
        super().__init__()
        self.store = [] if store is None else store

    def start(self, config, folder):
        self.store.append(("start", config.run_id(), folder))

    def held(self):
        last = {}
        for call in self.store:
            if call[0] == "log":
                last.update(dict.fromkeys(call[2], call[1]))
        return last

    def log(self, step, row):
        self.store.append(("log", step, dict(row)))

    def finish(self, summary):
        self.store.append(("finish", summary))


def _expected(folder: Path) -> dict[tuple[str, int], float]:
    """{(column, step): value} of the run folder's metrics.csv and evaluations.csv: what a logger must receive."""
    return {(key, row["step"]): value for name in (METRICS, EVALS) for row in read_csv(folder / name)
            for key, value in row.items() if key != "step" and value is not None}


def _same(logged: dict[tuple[str, int], float], expected: dict[tuple[str, int], float], *, rel: float = 1e-12,
          resumed: bool = True) -> None:
    """The same names and steps, and values (step times only without a resume: steps done twice took two times)."""
    assert logged.keys() == expected.keys()
    for key, value in expected.items():
        if key[0] != "step_time" or not resumed:
            assert logged[key] == pytest.approx(value, rel=rel, nan_ok=True), key


def _logged(store: list) -> dict[tuple[str, int], float]:
    """{(name, step): value} of a recorder's log calls; a repeated (name, step) fails."""
    found = {}
    for call in store:
        if call[0] == "log":
            for key, value in call[2].items():
                assert (key, call[1]) not in found, f"{key} logged twice at step {call[1]}"
                found[key, call[1]] = value
    return found


def _kill_and_resume(config, loggers):
    """Sitting 1 is killed on reaching step 17 (its checkpoint is at 10), sitting 2 resumes at 10: its result."""
    original = Simulation.step

    def dying(sim):
        if sim.t == 17:
            raise RuntimeError("killed")
        return original(sim)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Simulation, "step", dying)
        with pytest.raises(RuntimeError, match="killed"):
            run(config, progress=False, loggers=loggers)
    return run(config, progress=False, loggers=loggers)


# ----------------------------------------------------------------- no tracker needed
def test_a_log_option_names_registered_loggers_once_each():
    assert {"tensorboard", "wandb", "mlflow"} <= set(LOGGERS.names())
    assert parse_loggers(" tensorboard, mlflow(experiment=x,tracking_uri='a,b') ,") == [
        "tensorboard", "mlflow(experiment=x,tracking_uri='a,b')"]
    assert parse_loggers(None) == parse_loggers("") == []
    with pytest.raises(UnavailableException, match="Did you mean 'tensorboard'"):
        build_loggers("tensorbord")
    with pytest.raises(UserException, match="'tensorboard' 2 times"):  # tensorboard: in the test extra
        build_loggers(["tensorboard", "tensorboard"])
    with pytest.raises(UserException, match="no parameter 'colour'"):
        build_loggers("wandb(colour=red)")


def test_a_logger_gets_every_row_of_the_csv_files_and_the_summary_and_changes_nothing(small, tmp_path):
    config = small(steps=20)
    store = []
    result = run(config, progress=False, loggers=[Recorder(store)])
    assert store[0] == ("start", config.run_id(), config.folder())
    assert store[-1] == ("finish", result.summary)
    _same(_logged(store), _expected(result.folder), resumed=False)
    assert [call[1] for call in store if call[0] == "log"][:3] == [0, 0, 1]  # the evaluation at 0, then step 0
    plain = run(dataclasses.replace(config, output=str(tmp_path / "plain")), progress=False)
    assert plain.folder.name == result.folder.name  # the same run id
    assert [{k: v for k, v in r.items() if k != "step_time"} for r in plain.metrics] == \
           [{k: v for k, v in r.items() if k != "step_time"} for r in result.metrics]
    assert plain.evaluations == result.evaluations
    again = []
    run(config, progress=False, loggers=[Recorder(again)])
    assert again == []  # a finished run is returned, not run or logged again


def test_a_resumed_run_logs_each_step_once(small):
    config = small(steps=30, eval_every=5, checkpoint_every=10)
    store = []
    result = _kill_and_resume(config, [Recorder(store)])
    finishes = [call[1] for call in store if call[0] == "finish"]
    assert finishes == [None, result.summary]  # the killed sitting closed its logger, the second finished it
    _same(_logged(store), _expected(result.folder))  # steps 10-16 were computed twice, logged once


def test_a_logger_failing_to_close_does_not_hide_the_runs_own_error(small, monkeypatch):
    class Failing(Recorder):
        def finish(self, summary):
            raise OSError("tracker gone")

    def dying(sim):
        raise RuntimeError("killed")

    monkeypatch.setattr(Simulation, "step", dying)
    with pytest.raises(RuntimeError, match="killed"):
        run(small(), progress=False, loggers=[Failing()])


def test_a_missing_package_is_one_line_before_anything_runs(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    assert main(["train", "--log", "tensorboard,wandb", "--steps", "2", "--output", str(tmp_path / "t")]) == 2
    assert capsys.readouterr().err == \
        "byzsim: error: --log wandb needs the wandb package: pip install 'byzsim[wandb]'\n"
    grid = tmp_path / "g.toml"
    grid.write_text('dataset = "digits"\nsteps = 2\nseeds = 1\n')
    assert main(["grid", str(grid), "--log", "wandb", "--output", str(tmp_path / "g"), "--quiet"]) == 2
    assert "--log wandb needs the wandb package" in capsys.readouterr().err
    assert not (tmp_path / "t").exists() and not (tmp_path / "g").exists()


# ----------------------------------------------------------------- the trackers
def _scalars(folder: Path) -> tuple[dict[tuple[str, int], float], object]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0}).Reload()
    found = {}
    for tag in events.Tags()["scalars"]:
        for event in events.Scalars(tag):
            assert (tag, event.step) not in found, f"{tag} logged twice at step {event.step}"
            found[tag, event.step] = event.value
    return found, events


def test_tensorboard_holds_the_csv_columns_once_per_step_and_the_hyperparameters(small):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import plugin_data_pb2

    config = small(steps=30, eval_every=5, checkpoint_every=10, aggregator="median")
    result = _kill_and_resume(config, ["tensorboard"])
    scalars, events = _scalars(result.folder / "tensorboard")
    final = {(k, 30): v for k, v in result.summary.items() if k.startswith(("final_", "best_"))}
    assert set(final) == {(k, 30) for k in ("final_accuracy", "best_accuracy", "final_test_loss", "final_train_loss")}
    _same(scalars, {**_expected(result.folder), **final}, rel=1e-6)  # float32 on disk
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["aggregator"].string_value == "median" and hparams["steps"].number_value == 30
    assert hparams["model"].string_value == "none" and "output" not in hparams


def test_wandb_writes_an_offline_run_holding_the_rows_and_keeps_its_id_when_resumed(small):
    pytest.importorskip("wandb")
    result = _kill_and_resume(small(steps=20), ["wandb"])
    sittings = sorted((result.folder / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(sittings) == 2 and sittings[0].name == sittings[1].name  # one W&B run id, one folder per sitting
    keys = [key.encode() for key in ("train_loss", "aggregate_cosine", "accuracy", "test_loss", "final_accuracy",
                                     "best_accuracy", "nb_workers", result.folder.name)]  # rows, summary, config, name
    deadline = time.monotonic() + 60  # W&B's service writes the file after `finish` returns (0.2 s here)
    while not all(key in sittings[1].read_bytes() for key in keys) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [key for key in keys if key not in sittings[1].read_bytes()] == []


def _history(client, found) -> dict[tuple[str, int], float]:
    """{(name, step): value} of an MLflow run's metrics; a repeated (name, step) fails."""
    logged = {}
    for name in found.data.metrics:
        for metric in client.get_metric_history(found.info.run_id, name):
            assert (name, metric.step) not in logged, f"{name} logged twice at step {metric.step}"
            logged[name, metric.step] = metric.value
    return logged


def test_mlflow_keeps_the_rows_and_the_config_in_a_file_store_in_the_run_folder(small):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    result = run(small(steps=20), progress=False, loggers=["mlflow"])
    client = MlflowClient((result.folder / "mlruns").resolve().as_uri())
    (found,) = client.search_runs([client.get_experiment_by_name("byzsim").experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == result.folder.name
    assert found.data.params["aggregator"] == "average" and found.data.params["nb_workers"] == "7"
    logged = _history(client, found)
    for name in ("final_accuracy", "best_accuracy", "final_test_loss", "final_train_loss"):
        assert logged.pop((name, 20)) == result.summary[name]
    _same(logged, _expected(result.folder), resumed=False)


def test_mlflow_resumes_its_own_run_in_a_store_shared_by_several(small, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # MLflow 3 refuses a file store without it

    uri = (tmp_path / "shared").as_uri()
    loggers = [f"mlflow(tracking_uri='{uri}',experiment=grid)"]
    config = small(steps=30, eval_every=5, checkpoint_every=10)
    other = run(small(steps=4, seed=8), progress=False, loggers=loggers)  # the same store, another run
    result = _kill_and_resume(config, loggers)
    client = MlflowClient(uri)
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("grid").experiment_id])}
    assert sorted(runs) == sorted([result.folder.name, other.folder.name])
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    logged = _history(client, runs[result.folder.name])
    _same({k: v for k, v in logged.items() if not k[0].startswith(("final_", "best_"))}, _expected(result.folder))


def test_the_log_option_of_train_and_grid_reaches_every_run_and_grid_workers(tmp_path):
    pytest.importorskip("tensorboard")
    assert main(["train", "--dataset", "digits", "--nb-workers", "7", "--nb-decl-byz", "1", "--steps", "4",
                 "--eval-every", "2", "--output", str(tmp_path / "one"), "--quiet", "--log", "tensorboard"]) == 0
    (folder,) = (tmp_path / "one").iterdir()
    assert _scalars(folder / "tensorboard")[0].keys() == _expected(folder).keys() | {
        (k, 4) for k in ("final_accuracy", "best_accuracy", "final_test_loss", "final_train_loss")}
    path = tmp_path / "two.toml"
    path.write_text('dataset = "digits"\nnb_workers = 7\nnb_decl_byz = 1\nsteps = 4\neval_every = 2\n'
                    'aggregator = ["median", "krum"]\nseeds = 1\n')
    outcome = run_grid(load_grids(path)["two"], tmp_path / "grid", jobs=2, progress=False, loggers="tensorboard")
    assert outcome.done == 2
    for config in load_grids(path)["two"].configs:
        folder = tmp_path / "grid" / config.run_id()
        assert (folder / "tensorboard").is_dir() and math.isfinite(_scalars(folder / "tensorboard")[0]["accuracy", 4])
