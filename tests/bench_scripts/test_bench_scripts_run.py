"""Every benchmark script still runs (on tiny sizes): their tables back the docs' speed claims.

Nothing here asserts a time; a script that no longer matches the code fails here, not in a reader's hands.
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

QUICK = {  # script: arguments small enough for CI
    "attack_costs.py": ["6", "2000"],
}
SLOW = {
    "aggregators.py": ["--quick", "--only", "median", "krum", "--sizes", "10:20000"],
    "engines.py": ["--quick", "--threads", "1"],
    "federated.py": ["--quick", "--clients", "3", "--steps", "2"],
    "step.py": ["--quick"],
    "entry_points.py": ["--rounds", "1"],
    "fused.py": ["--sizes", "10:5000", "--repeats", "1"],
    "demo.py": ["--rounds", "1"],
}


def run_script(name: str, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("name", sorted(QUICK))
def test_a_quick_benchmark_runs(name):
    done = run_script(name, QUICK[name])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW))
def test_a_benchmark_runs_on_small_sizes(name):
    done = run_script(name, SLOW[name])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()


def test_every_benchmark_script_is_exercised_here():
    needs_outside_code = {"byzfl.py", "distributed.py", "grid.py"}  # ByzFL's wheel; torchrun; whole grids
    scripts = {p.name for p in (ROOT / "benchmarks").glob("*.py")}
    assert scripts - needs_outside_code == set(QUICK) | set(SLOW)
