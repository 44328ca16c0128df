"""Running grids: one folder, skipping finished runs, resuming, failures, jobs, shards, records, the command."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.tools import UserException
from simulator.cli.main import main
from simulator.grid import load_grids, parse_shard, run_grid, runner, shard_of
from simulator.grid.records import restore_records, save_record
from simulator.report import write_report
from simulator.core.simulation import Simulation
from simulator.core.store import CHECKPOINT, CONFIG, EVALS, METRICS, SUMMARY, read_csv

GRID = '''dataset = "digits"
nb_workers = 7
nb_decl_byz = 1
steps = 6
eval_every = 3
checkpoint_every = 3
aggregator = ["median", "krum"]
attack = ["none", "alie"]
seeds = 1
'''


@pytest.fixture
def grid(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(GRID)
    return load_grids(path)["small"]


def finished(folder):
    return sorted(p.parent.name for p in folder.glob(f"*/{SUMMARY}"))


def test_a_grid_runs_into_one_folder_and_skips_finished_runs(grid, tmp_path, monkeypatch):
    out = tmp_path / "out"
    outcome = run_grid(grid, out, progress=False)
    assert (outcome.done, outcome.failed, outcome.skipped) == (4, 0, 0)
    assert finished(out) == sorted(c.run_id() for c in grid.configs)
    assert (out / "grid.toml").read_text() == GRID
    monkeypatch.setattr(Simulation, "__init__", lambda *a: pytest.fail("a finished run ran again"))
    again = run_grid(grid, out, progress=False)
    assert (again.done, again.skipped) == (0, 4)


def test_an_interrupted_grid_resumes_each_run_from_its_checkpoint(grid, tmp_path, monkeypatch):
    out = tmp_path / "out"
    original = Simulation.step

    def dying(self):
        if self.config.aggregator == "krum" and self.t == 4:
            raise RuntimeError("killed")
        return original(self)

    monkeypatch.setattr(Simulation, "step", dying)
    first = run_grid(grid, out, progress=False)
    assert (first.done, first.failed) == (2, 2)
    errors = sorted((out / "errors").iterdir())
    assert len(errors) == 2 and "killed" in errors[0].read_text() and "aggregator = 'krum'" in errors[0].read_text()
    krum = [c for c in grid.configs if c.aggregator == "krum"]
    assert all((out / c.run_id() / CHECKPOINT).exists() for c in krum)  # checkpointed at step 3
    monkeypatch.setattr(Simulation, "step", original)
    second = run_grid(grid, out, progress=False)
    assert (second.done, second.failed, second.skipped) == (2, 0, 2)
    assert not list((out / "errors").iterdir())  # a run that succeeds clears its error
    reference = tmp_path / "reference"
    run_grid(grid, reference, progress=False)
    for config in krum:
        resumed = (out / config.run_id() / "evaluations.csv").read_text()
        assert resumed == (reference / config.run_id() / "evaluations.csv").read_text()


def test_runs_start_seed_by_seed_so_a_stopped_grid_covers_every_cell_once(tmp_path, monkeypatch):
    path = tmp_path / "seeds.toml"
    path.write_text(GRID.replace("seeds = 1", "seeds = [2, 0, 1]"))
    grid = load_grids(path)["seeds"]
    started = []
    monkeypatch.setattr(runner, "_execute", lambda configs, jobs, threads, loggers: started.extend(configs) or iter(()))
    run_grid(grid, tmp_path / "out", progress=False)
    assert [c.seed for c in started] == [0] * 4 + [1] * 4 + [2] * 4
    cells = [(c.aggregator, c.attack) for c in grid.configs if c.seed == 0]
    assert [(c.aggregator, c.attack) for c in started[:4]] == cells and len(set(cells)) == 4


def test_shards_are_disjoint_complete_and_balanced(grid):
    slices = [shard_of(grid.configs, (i, 3)) for i in (1, 2, 3)]
    ids = [c.run_id() for part in slices for c in part]
    assert sorted(ids) == sorted(c.run_id() for c in grid.configs) and len(set(ids)) == len(ids)
    assert sorted(len(part) for part in slices) == [1, 1, 2]
    assert [c.run_id() for c in shard_of(grid.configs, (2, 3))] == [c.run_id() for c in slices[1]]


@pytest.mark.parametrize("text", ["3/2", "a/b", "0/2", "2", "1/0", "-1/2"])
def test_malformed_shards_are_user_errors(text):
    with pytest.raises(UserException, match="Malformed shard"):
        parse_shard(text)


def test_two_jobs_give_the_same_results_as_one(grid, tmp_path):
    run_grid(grid, tmp_path / "one", jobs=1, progress=False)
    outcome = run_grid(grid, tmp_path / "two", jobs=2, progress=False)
    assert outcome.done == 4
    for config in grid.configs:
        one = (tmp_path / "one" / config.run_id() / "evaluations.csv").read_text()
        assert one == (tmp_path / "two" / config.run_id() / "evaluations.csv").read_text()


def test_a_folder_holding_another_grids_runs_needs_append(grid, tmp_path):
    out = tmp_path / "out"
    run_grid(grid, out, shard=(1, 4), progress=False)
    other = tmp_path / "other.toml"
    other.write_text(GRID.replace("seeds = 1", "seeds = [9]"))
    (other_grid,) = load_grids(other).values()
    with pytest.raises(UserException, match="holds 1 runs that are not in grid 'other'"):
        run_grid(other_grid, out, progress=False)
    assert run_grid(other_grid, out, append=True, progress=False).done == 4


def test_the_command_lists_runs_runs_them_and_reports_failures_in_its_exit_status(grid, tmp_path, capsys,
                                                                                   monkeypatch):
    spec, out = str(grid.path), str(tmp_path / "cmd")
    assert main(["grid", spec, "--output", out, "--list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4 and {r["status"] for r in rows} == {"pending"}
    assert rows[0]["config"]["dataset"] == "digits" and rows[0]["run_id"] == grid.configs[0].run_id()
    assert main(["grid", spec, "--output", out, "--list", "--shard", "2/4"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    original = Simulation.step
    monkeypatch.setattr(Simulation, "step", lambda self: (_ for _ in ()).throw(RuntimeError("boom"))
                        if self.config.attack == "alie" else original(self))
    assert main(["grid", spec, "--output", out, "--quiet"]) == 2
    assert "2 run(s) failed" in capsys.readouterr().err
    assert main(["grid", spec, "--output", out, "--shard", "3/2"]) == 2
    assert "Malformed shard" in capsys.readouterr().err


def _children(pid):
    """Live child processes of pid, from /proc (zombies count as gone)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupting_a_grid_stops_its_worker_processes_and_says_how_to_resume(tmp_path, how):
    path = tmp_path / "long.toml"
    path.write_text(GRID.replace("steps = 6", "steps = 1000000").replace("checkpoint_every = 3", ""))
    grid = subprocess.Popen([sys.executable, "-m", "simulator", "grid", str(path), "--jobs", "2", "--quiet",
                             "--output", str(tmp_path / "out")], stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((tmp_path / "out").glob("*/config.json"))) < 2:
        time.sleep(0.2)
    workers = [pid for pid in _children(grid.pid) if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(workers) == 2, grid.stderr.read().decode() if grid.poll() is not None else workers
    if how == "ctrl-c":  # a terminal signals the whole foreground process group
        os.killpg(grid.pid, signal.SIGINT)
    else:  # a batch system signals the job's process
        grid.send_signal(signal.SIGTERM)
    try:
        assert grid.wait(timeout=60) == 130
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(map(_alive, workers)):
            time.sleep(0.2)
        assert not any(map(_alive, workers)), "the workers outlived the interrupted grid"
        err = grid.stderr.read().decode()
        assert "grid interrupted (0 done" in err and "run the same command again to resume" in err
        assert "Traceback" not in err and "leaked" not in err  # tqdm's lock in the killed workers (tqdm#1677)
    finally:  # never leave a million-step run behind
        for pid in filter(_alive, workers):
            os.kill(pid, signal.SIGKILL)


def test_a_grid_on_two_jobs_ends_its_workers_without_leaked_semaphore_warnings(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(GRID.replace('attack = ["none", "alie"]', 'attack = "none"').replace("steps = 6", "steps = 20"))
    done = subprocess.run([sys.executable, "-m", "simulator", "grid", str(path), "--jobs", "2", "--quiet",
                           "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "2 done" in done.stderr and "leaked" not in done.stderr  # the workers end and release their locks


def table(folder, tmp_path):
    """The report's result table of the runs under ``folder`` (the report is drawn, diagnostics included)."""
    out = tmp_path / f"report-{folder.name}"
    write_report(folder, out, formats=("png",))
    return (out / "table.csv").read_text()


def test_records_hold_the_small_files_of_each_finished_run_and_no_per_step_log(grid, tmp_path):
    records = tmp_path / "records"
    assert run_grid(grid, tmp_path / "out", records=records, progress=False).done == 4
    assert sorted(p.name for p in records.iterdir()) == sorted(c.run_id() for c in grid.configs)
    for config in grid.configs:
        record, run = records / config.run_id(), tmp_path / "out" / config.run_id()
        assert sorted(p.name for p in record.iterdir()) == sorted([CONFIG, EVALS, METRICS, SUMMARY])
        for name in (CONFIG, EVALS, SUMMARY):
            assert (record / name).read_bytes() == (run / name).read_bytes()
        assert len(read_csv(run / METRICS)) == 6
        kept = read_csv(record / METRICS)
        assert [row["step"] for row in kept] == [0, 3, 5]  # the evaluation steps and the last
        assert kept == [row for row in read_csv(run / METRICS) if row["step"] in (0, 3, 5)]


def test_a_fresh_machine_with_the_records_runs_nothing_and_reports_the_same(grid, tmp_path, monkeypatch):
    records = tmp_path / "records"
    run_grid(grid, tmp_path / "first", records=records, progress=False)
    monkeypatch.setattr(Simulation, "__init__", lambda *a: pytest.fail("a recorded run ran again"))
    outcome = run_grid(grid, tmp_path / "fresh", records=records, progress=False)
    assert (outcome.done, outcome.skipped, outcome.restored) == (0, 4, 4)
    assert outcome.line() == "0 done, 0 failed, 4 already finished (4 restored from records)"
    assert not list((tmp_path / "fresh").glob(f"*/{CHECKPOINT}"))
    assert table(tmp_path / "fresh", tmp_path) == table(tmp_path / "first", tmp_path)


def test_a_grid_split_over_two_machines_meets_in_the_records(grid, tmp_path):
    records = tmp_path / "records"
    run_grid(grid, tmp_path / "a", shard=(1, 2), records=records, progress=False)
    assert len(list(records.iterdir())) == 2
    second = run_grid(grid, tmp_path / "b", records=records, progress=False)  # restores two, runs two
    assert (second.done, second.skipped) == (2, 2)
    assert len(list(records.iterdir())) == 4
    run_grid(grid, tmp_path / "reference", progress=False)
    for config in grid.configs:
        ours = (tmp_path / "b" / config.run_id() / EVALS).read_text()
        assert ours == (tmp_path / "reference" / config.run_id() / EVALS).read_text()


def test_runs_finished_before_records_were_asked_for_are_recorded(grid, tmp_path):
    run_grid(grid, tmp_path / "out", progress=False)
    run_grid(grid, tmp_path / "out", records=tmp_path / "records", progress=False)
    assert len(list((tmp_path / "records").glob(f"*/{SUMMARY}"))) == 4


def test_a_record_cut_short_or_of_another_run_is_refused_or_ignored(grid, tmp_path):
    records = tmp_path / "records"
    run_grid(grid, tmp_path / "out", records=records, progress=False)
    first, second = (records / c.run_id() for c in grid.configs[:2])
    (first / EVALS).unlink()
    with pytest.raises(UserException, match="evaluations.csv cannot be read"):
        restore_records(grid.configs, records)
    (first / EVALS).write_bytes((second / EVALS).read_bytes())
    (first / CONFIG).write_bytes((second / CONFIG).read_bytes())
    with pytest.raises(UserException, match=f"holds run {second.name}"):
        run_grid(grid, tmp_path / "elsewhere", records=records, progress=False)
    (first / SUMMARY).unlink()  # no summary: an unfinished record, not restored
    restore_records([grid.configs[0]], records)
    assert not (grid.configs[0].folder() / SUMMARY).exists()
    with pytest.raises(UserException, match="holds no finished run"):
        save_record(tmp_path / "out" / "nothing", records)


def test_the_grid_command_takes_records(grid, tmp_path):
    out, records = tmp_path / "cmd", tmp_path / "records"
    assert main(["grid", str(grid.path), "--output", str(out), "--records", str(records), "--quiet"]) == 0
    assert len(list(records.glob(f"*/{SUMMARY}"))) == 4
    assert json.loads(next(records.glob(f"*/{SUMMARY}")).read_text())["steps"] == 6
