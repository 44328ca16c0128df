"""A grid survives its worker processes: one killed mid-run loses nothing; ones that cannot start stop the grid.

These kill real processes (a grid on two workers, under `python -m simulator grid` or a user's script).
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.core.store import SUMMARY

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")

GRID = '''dataset = "digits"
nb_workers = 7
nb_decl_byz = 1
steps = 400
eval_every = 200
checkpoint_every = 50
aggregator = ["median", "trmean"]
attack = ["none", "signflip"]
'''


def _workers(pid: int) -> list[int]:
    """The grid's worker processes: live children of ``pid`` started by multiprocessing's spawn."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z" and "spawn_main" in (stat.parent / "cmdline").read_text():
                found.append(int(stat.parent.name))
        except OSError:
            continue
    return found


def test_a_worker_killed_mid_run_loses_its_run_to_a_new_worker_and_the_grid_finishes(tmp_path):
    (tmp_path / "g.toml").write_text(GRID)
    out = tmp_path / "out"
    grid = subprocess.Popen([sys.executable, "-m", "simulator", "grid", str(tmp_path / "g.toml"), "--jobs", "2",
                             "--quiet", "--output", str(out)], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(out.glob("*/checkpoint.pt")):
            time.sleep(0.1)
        victims = _workers(grid.pid)
        assert victims, "no worker process found"
        os.kill(victims[0], signal.SIGKILL)
        assert grid.wait(timeout=300) == 0, grid.stderr.read()
    finally:
        if grid.poll() is None:
            grid.kill()
    assert len(list(out.glob(f"*/{SUMMARY}"))) == 4  # every run finished, the killed one resumed
    assert "4 done, 0 failed" in grid.stderr.read()


def test_workers_that_die_at_start_up_stop_the_grid_with_one_line_after_a_few_tries(tmp_path):
    (tmp_path / "g.toml").write_text(GRID.replace("steps = 400", "steps = 2"))
    script = tmp_path / "wrapper.py"  # no `if __name__ == "__main__":` guard: every spawned worker reruns it
    script.write_text(f"from simulator.grid import load_grids, run_grid\n"
                      f"run_grid(load_grids({str(tmp_path / 'g.toml')!r})['g'], {str(tmp_path / 'out')!r}, jobs=2, "
                      f"progress=False)\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode != 0 and time.monotonic() - started < 300
    assert "died 3 times in a row" in done.stderr and '__name__ == "__main__"' in done.stderr
