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
    "defences.py": ["--quick"],
}
SLOW = {
    "aggregators.py": ["--quick", "--only", "median", "krum", "--sizes", "10:20000"],
    "engines.py": ["--quick", "--threads", "1"],
    "federated.py": ["--quick", "--clients", "3", "--steps", "2"],
    "step.py": ["--quick", "--sizes", "6", "--small", "3", "--batch-size", "4", "--no-reference"],
    "entry_points.py": ["--rounds", "1"],
    "fused.py": ["--sizes", "10:5000", "--repeats", "1"],
    "demo.py": ["--rounds", "1"],
    "privacy.py": ["--quick", "--n", "3", "--b", "4", "--threads", "1"],
    "decentralised.py": ["--quick", "--nodes", "16", "--repeats", "1", "--rules", "gossip", "krum", "--threads", "1"],
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
@pytest.mark.parametrize("name", sorted(set(SLOW) - {"step.py"}))  # step.py: its own test below
def test_a_benchmark_runs_on_small_sizes(name):
    done = run_script(name, SLOW[name])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()


def test_every_benchmark_script_is_exercised_here():
    needs_outside_code = {"byzfl.py", "distributed.py", "grid.py"}  # ByzFL's wheel; torchrun; whole grids
    scripts = {p.name for p in (ROOT / "benchmarks").glob("*.py")}
    assert scripts - needs_outside_code == set(QUICK) | set(SLOW)


@pytest.mark.slow
def test_the_step_benchmark_covers_every_model_and_names_the_engine_and_the_kernel_in_use(tmp_path):
    """What a plain run gets, shown: the default engine's pick per model and the fused kernel of the rule."""
    import os

    from experiments import models
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "step.py"), *SLOW["step.py"]], cwd=ROOT,
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "BYZSIM_CACHE_DIR": str(tmp_path)})  # a machine's first run
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "engine: the default (fastest)" in lines[0] and "BYZSIM_FUSED=auto; built by this run" in lines[1]
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in
            [*models.names(), "resnet18"]}
    assert set(rows) == {*models.names(), "resnet18"}
    assert rows["simples-conv"][3] == "grouped" and rows["simples-cifar"][3] == "vmap"  # from their layers
    assert all(row[4] == "specialised" for row in rows.values())  # the median on its fused kernel
