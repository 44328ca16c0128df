"""Plug-ins from outside byzsim: files, modules, BYZSIM_PLUGINS and entry points, in every command.

Each test runs byzsim in a subprocess, so the plug-ins never enter this test process's registries.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import plugins
from experiments.tools import UserException

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "plugins"
RULE, ATTACK = EXAMPLES / "normfilter.py", EXAMPLES / "reverse.py"
BOTH = f"{RULE},{ATTACK}"


def byzsim(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != plugins.ENV}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True,
                          env=environment, cwd=cwd or ROOT, timeout=600)


def test_a_grid_over_outside_parts_runs_reports_and_says_which_plugin_is_missing(tmp_path):
    out = tmp_path / "grid"
    done = byzsim("grid", str(EXAMPLES / "grid.toml"), "--plugins", BOTH, "--output", str(out), "--jobs", "2",
                  "--quiet")
    assert done.returncode == 0, done.stderr
    assert "4 done, 0 failed" in done.stderr  # the worker processes loaded the plug-ins too
    recorded = json.loads((out / "plugins.json").read_text())
    assert recorded == {str(RULE): {"aggregator": ["normfilter"]}, str(ATTACK): {"attack": ["reverse"]}}
    # Without the plug-ins: one line naming the one that provides the unknown name.
    for command in (("report", str(out)), ("grid", str(EXAMPLES / "grid.toml"), "--output", str(out), "--list")):
        refused = byzsim(*command)
        assert refused.returncode == 2
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and f"--plugins {RULE}" in lines[0] and "normfilter" in lines[0], refused.stderr
    # With them, from the environment this time.
    report = byzsim("report", str(out), env={plugins.ENV: BOTH})
    assert report.returncode == 0, report.stderr
    assert "normfilter" in (out / "report.md").read_text()


def test_train_and_list_take_a_module_name_and_the_python_api_loads_files(tmp_path):
    env = {"PYTHONPATH": str(EXAMPLES)}
    trained = byzsim("train", "--plugins", "normfilter,reverse", "--aggregator", "normfilter",
                     "--attack", "reverse(scale=2)", "--steps", "5", "--output", str(tmp_path), "--quiet", env=env)
    assert trained.returncode == 0, trained.stderr
    assert "digits-normfilter-reverse" in trained.stdout
    listed = byzsim("list", "aggregators", "--plugins", "normfilter", env=env)
    assert "normfilter" in listed.stdout
    code = (f"import simulator; simulator.load_plugins({str(RULE)!r}); "
            f"r = simulator.run(simulator.Config(aggregator='normfilter', steps=3, output={str(tmp_path / 'api')!r}), "
            "progress=False); print(r.summary['final_accuracy'])")
    api = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert api.returncode == 0, api.stderr
    assert 0 <= float(api.stdout.strip()) <= 1


def test_an_installed_package_is_found_by_its_entry_point(tmp_path):
    """A distribution declaring ``[byzsim.plugins]`` in its entry points is loaded without any option."""
    site = tmp_path / "site"
    info = site / "labrules-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: labrules\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[byzsim.plugins]\nnormfilter = normfilter\n")
    (site / "normfilter.py").write_text(RULE.read_text())
    listed = byzsim("list", "aggregators", env={"PYTHONPATH": str(site)})
    assert listed.returncode == 0, listed.stderr
    assert "normfilter" in listed.stdout


def test_a_broken_or_missing_plugin_is_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no licence server')\n")
    for spec, expected in ((str(broken), "failed to import: RuntimeError: no licence server"),
                           (str(tmp_path / "absent.py"), "does not exist"),
                           ("no_such_module_here", "was not found")):
        done = byzsim("train", "--plugins", spec, "--steps", "1", "--output", str(tmp_path), "--quiet")
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1 and expected in done.stderr, done.stderr


def test_parse_takes_commas_and_path_separators():
    assert plugins.parse(f"a.py, b{os.pathsep}c.mod,") == ["a.py", "b", "c.mod"]
    assert plugins.parse(["x", "y,z"]) == ["x", "y", "z"]
    assert plugins.parse(None) == []


def test_missing_file_raises_a_user_error(tmp_path):
    with pytest.raises(UserException, match="does not exist"):
        plugins.load(str(tmp_path / "nothing.py"))
