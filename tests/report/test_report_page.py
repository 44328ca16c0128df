"""What report.md shows a reader: intervals inside [0, 1], the accuracy's range, and a fixed-settings table of
the settings that define the experiment, without unset values, bookkeeping or options left at their default."""
import csv
import math

import numpy as np
import pytest
from scipy import stats

from simulator import Config
from simulator.report import load, write_report
from simulator.report.naming import fixed_rows
from simulator.report.page import cell
from simulator.report.stats import interval

BASE = {"dataset": "digits", "nb_workers": 7, "nb_decl_byz": 1, "aggregator": "median"}


@pytest.fixture
def seeds(tmp_path, finished_run):
    """Three seeds per attack, final accuracies spread wide (alie: 0, 0, 0.639) or near 1 (signflip)."""
    finals = {"alie": [0.0, 0.0, 0.639], "signflip": [0.9, 0.95, 1.0], "none": [0.5, 0.52, 0.54]}
    for attack, values in finals.items():
        for seed, final in enumerate(values, start=1):
            finished_run(Config(**BASE, attack=attack, seed=seed, output=str(tmp_path)), [0.1, final])
    write_report(tmp_path, diagnostics=False, formats=("png",))
    return tmp_path, finals


def _t_interval(values):
    values = np.asarray(values)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return values.mean(), half


def test_an_interval_running_outside_0_1_is_shown_clipped_as_low_high(seeds):
    root, finals = seeds
    page = (root / "report.md").read_text()
    mean, half = _t_interval(finals["alie"])
    assert mean - half < 0 and mean + half > 1  # 0.213 +/- 0.916: outside on both sides
    assert "0.213 [0.000, 1.000] (3)" in page
    mean, half = _t_interval(finals["signflip"])
    assert f"0.950 [{mean - half:.3f}, 1.000] (3)" in page
    mean, half = _t_interval(finals["none"])
    assert f"0.520 ± {half:.3f} (3)" in page  # inside [0, 1]: the symmetric form
    assert "clipped to that range as [low, high]" in page


def test_the_table_keeps_the_half_width_and_gives_the_clipped_ends(seeds):
    root, finals = seeds
    with open(root / "table.csv") as handle:
        rows = {r["attack"]: r for r in csv.DictReader(handle)}
    for attack, values in finals.items():
        mean, half = _t_interval(values)
        row = rows[attack]
        assert float(row["final_ci"]) == pytest.approx(half, abs=1e-6)
        assert float(row["final_low"]) == pytest.approx(max(0.0, mean - half), abs=1e-6)
        assert float(row["final_high"]) == pytest.approx(min(1.0, mean + half), abs=1e-6)
        assert 0 <= float(row["final_low"]) <= float(row["final_high"]) <= 1


def test_interval_and_cell_of_one_seed_and_of_a_tight_group():
    assert all(math.isnan(x) for x in interval(0.5, math.nan))
    assert cell(0.5, math.nan, 1) == "0.500 (1)"
    assert interval(0.6, 0.1) == pytest.approx((0.5, 0.7))
    assert cell(0.6, 0.1, 4) == "0.600 ± 0.100 (4)"
    assert interval(0.05, 0.2) == (0.0, pytest.approx(0.25))


def test_the_fixed_settings_are_those_a_reader_reads_in_reading_order(tmp_path, finished_run):
    fields = {**BASE, "momentum": 0.9, "batch_size": 16, "eval_every": 10, "steps": 40, "checkpoint_every": 7,
              "data_root": str(tmp_path / "data"), "test_batch_size": 1024, "engine": "fastest"}
    for attack in ("none", "alie"):
        finished_run(Config(**fields, attack=attack, output=str(tmp_path)), [0.1, 0.5])
    write_report(tmp_path, diagnostics=False, formats=("png",))
    page = (tmp_path / "report.md").read_text()
    table = page.split("Fixed settings", 1)[1].split("\n\n## ", 1)[0]
    rows = [line.split(" | ")[0].strip("| `") for line in table.splitlines() if line.startswith("| `")]
    assert rows == ["dataset", "model", "nb_workers", "nb_real_byz", "nb_decl_byz", "heterogeneity", "batch_size",
                    "steps", "lr", "lr_schedule", "momentum", "momentum_at", "weight_decay",
                    "eval_every"]  # the defining fields, then the only other one away from its default
    for noise in ("engine", "device", "criterion", "loss", "test_batch_size", "clip", "output", "data_root",
                  "checkpoint_every", "None", "{}"):
        assert noise not in table, noise
    assert load(tmp_path).fixed["engine"].startswith("fastest")  # still in the design, only not shown


def test_fixed_rows_drop_empty_and_bookkeeping_values_and_keep_the_rest_deterministic():
    fixed = {"steps": 10, "criterion_args": {}, "chunk_size": None, "output": "x", "data_root": "/d",
             "checkpoint_every": 3, "dataset": "digits", "loss": "crossentropy", "l2": 0.01, "device": "cuda",
             "clip": None, "model_args": {}, "aggregator_extra": []}
    expected = [("dataset", "digits"), ("steps", 10), ("device", "cuda"), ("l2", 0.01)]
    assert fixed_rows(fixed) == expected
    assert fixed_rows(dict(reversed(fixed.items()))) == expected
