"""Importing the packages prints nothing and changes no global state."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import random, sys, torch
before = (torch.random.get_rng_state().clone(), random.getstate(), sys.excepthook)
import aggregators, attacks, simulator, simulator.cli.main, simulator.grid, simulator.report
after = (torch.random.get_rng_state(), random.getstate(), sys.excepthook)
assert torch.equal(before[0], after[0]) and before[1] == after[1] and before[2] is after[2]
"""


def test_importing_every_package_is_silent_and_stateless():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
