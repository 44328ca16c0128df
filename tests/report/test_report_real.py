"""A report from a real small grid (digits, 2 rules x 3 attacks x 2 seeds): every number is
recomputed here from the runs' own evaluations.csv, independently of simulator.report."""
import csv
import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from simulator import Config, run
from simulator.report import load, summarise, worst_cases, write_report
from simulator.report.plots import plots

AGGREGATORS = ("median", "trmean")
ATTACKS = ("none", "alie", "signflip")
SEEDS = (1, 2)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The runs (at two depths, beside an unfinished run, a grid file and an errors folder) and a report."""
    root = tmp_path_factory.mktemp("grid")
    runs = root / "runs"
    for aggregator, attack, seed in itertools.product(AGGREGATORS, ATTACKS, SEEDS):
        output = runs / "a" if aggregator == "median" else runs / "b" / "deeper"
        run(Config(dataset="digits", nb_workers=7, nb_decl_byz=1, aggregator=aggregator, attack=attack, seed=seed,
                   steps=5, eval_every=1, batch_size=16, lr=0.3, output=str(output)), progress=False)
    (runs / "grid.toml").write_text('aggregator = ["median"]\n')
    (runs / "errors").mkdir()
    (runs / "errors" / "failed.txt").write_text("Traceback ...\n")
    unfinished = runs / "a" / "unfinished-run"
    unfinished.mkdir()
    (unfinished / "checkpoint.pt").write_bytes(b"")
    (unfinished / "config.json").write_text(json.dumps(Config(aggregator="krum").to_dict()))
    out = root / "report"
    return runs, out, write_report(runs, out)


def _expected(runs: Path) -> dict:
    """(aggregator, attack) -> {metric: (mean, ci half-width)} from the run folders' own files."""
    curves: dict = {}
    for evaluations in sorted(runs.rglob("evaluations.csv")):
        if not (evaluations.parent / "summary.json").exists():
            continue
        config = json.loads((evaluations.parent / "config.json").read_text())
        with open(evaluations) as handle:
            accuracy = [float(row["accuracy"]) for row in csv.DictReader(handle)]
        curves.setdefault((config["aggregator"], config["attack"]), []).append(accuracy)
    out = {}
    for key, seeds in curves.items():
        acc = np.array(seeds)
        t = stats.t.ppf(0.975, len(acc) - 1)
        out[key] = {name: (values.mean(), t * values.std(ddof=1) / math.sqrt(len(values)))
                    for name, values in (("final", acc[:, -1]), ("best", acc.max(axis=1)),
                                         ("last5", acc[:, -5:].mean(axis=1)))}
    return out


def _cell(mean: float, half: float, seeds: int = 2) -> str:
    """A page cell: mean ± half, or the interval clipped to [0, 1] as [low, high] where it runs outside."""
    if mean - half < 0 or mean + half > 1:
        return f"{mean:.3f} [{max(0.0, mean - half):.3f}, {min(1.0, mean + half):.3f}] ({seeds})"
    return f"{mean:.3f} ± {half:.3f} ({seeds})"


def _rows(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_the_table_holds_mean_and_interval_over_seeds_of_each_metric(grid):
    runs, out, _ = grid
    expected = _expected(runs)
    rows = _rows(out / "table.csv")
    assert [(r["aggregator"], r["attack"]) for r in rows] == list(itertools.product(AGGREGATORS, ATTACKS))
    for row in rows:
        assert row["seeds"] == "2"
        for metric, (mean, half) in expected[row["aggregator"], row["attack"]].items():
            assert float(row[f"{metric}_mean"]) == pytest.approx(mean, abs=1e-6)
            assert float(row[f"{metric}_ci"]) == pytest.approx(half, abs=1e-6)
            assert float(row[f"{metric}_low"]) == pytest.approx(max(0.0, mean - half), abs=1e-6)
            assert float(row[f"{metric}_high"]) == pytest.approx(min(1.0, mean + half), abs=1e-6)
    assert {r["attack_canonical"] for r in rows} == {"none", "alie(z=none)", "signflip"}


def test_last5_averages_the_last_five_of_six_evaluations(grid):
    runs, out, _ = grid
    evaluations = next(runs.rglob("evaluations.csv"))
    with open(evaluations) as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == [0, 1, 2, 3, 4, 5]  # step 0 is left out


def test_the_worst_case_names_the_lowest_attack_and_leaves_out_none(grid):
    runs, out, _ = grid
    expected = _expected(runs)
    rows = {r["aggregator"]: r for r in _rows(out / "worst_case.csv")}
    assert sorted(rows) == sorted(AGGREGATORS)
    worst = {}
    for aggregator in AGGREGATORS:
        finals = {attack: expected[aggregator, attack]["final"][0] for attack in ("alie", "signflip")}
        attack = min(finals, key=finals.get)
        worst[aggregator] = finals[attack]
        row = rows[aggregator]
        assert row["worst_attack"] == attack and row["metric"] == "final"
        assert float(row["worst_case"]) == pytest.approx(finals[attack], abs=1e-6)
        attack_free = expected[aggregator, "none"]["final"][0]
        assert float(row["attack_free"]) == pytest.approx(attack_free, abs=1e-6)
        assert float(row["drop"]) == pytest.approx(attack_free - finals[attack], abs=1e-6)
    best = max(worst.values())
    assert {a for a, r in rows.items() if r["best_rule"] == "True"} == {a for a, v in worst.items() if v == best}


def test_the_page_shows_each_cell_and_the_best_rule(grid):
    runs, out, _ = grid
    expected = _expected(runs)
    page = (out / "report.md").read_text()
    for heading in ("## What was run", "## Accuracy: final test accuracy", "## Worst case over attacks",
                    "## Best rule per setting", "## Figures"):
        assert heading in page
    assert "## Selection" not in page
    assert "12 finished runs in 6 groups" in page and "seeds 1, 2" in page
    assert "1 unfinished run folders" in page
    assert "| `dataset` | `digits` |" in page and "| `nb_workers` | `7` |" in page
    assert "| aggregator | none | alie | signflip |" in page
    for (aggregator, attack), metrics in expected.items():
        assert _cell(*metrics["final"]) in page, (aggregator, attack)
    best = next(r["aggregator"] for r in _rows(out / "worst_case.csv") if r["best_rule"] == "True")
    assert f"Best rule: **{best}**" in page


def test_every_file_is_returned_linked_and_complete(grid):
    _, out, files = grid
    on_disk = {p for p in out.rglob("*") if p.is_file()}
    assert set(files) == on_disk and files[-1] == out / "report.md"
    assert not [p for p in on_disk if p.name.startswith(".")]  # no temporary file left behind
    stems = {p.with_suffix("") for p in files if p.suffix in (".png", ".pdf")}
    assert {s.name for s in stems} == {"heatmap-attacks", "curves", "diagnostics"}
    for stem in stems:
        assert stem.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
        assert stem.with_suffix(".pdf").read_bytes()[:4] == b"%PDF"
    links = re.findall(r"\]\(([^)]+)\)", (out / "report.md").read_text())
    assert links and all((out / link).is_file() for link in links)


def test_the_figures_have_one_panel_per_attack_and_one_line_per_rule(grid):
    runs, _, _ = grid
    design = load(runs, metrics=True)
    summaries = summarise(design)
    figures = {p.stem: p.figure for p in plots(design, summaries, worst_cases(summaries, "final"), "final",
                                               diagnostics=True)}
    heatmap = figures["heatmap-attacks"]
    image = heatmap.axes[0].images[0]
    assert image.get_clim() == (0, 1) and image.get_array().shape == (2, 3)
    assert [t.get_text() for t in heatmap.axes[0].get_xticklabels()] == list(ATTACKS)
    assert "dataset=digits" in heatmap.get_suptitle() and "n=7" in heatmap.get_suptitle()
    for stem in ("curves", "diagnostics"):
        panels = [ax for ax in figures[stem].axes if ax.get_visible()]
        assert [ax.get_title() for ax in panels] == [f"attack: {a}" for a in ATTACKS]
        assert all(sorted(line.get_label() for line in ax.get_lines()) == list(AGGREGATORS) for ax in panels)
        assert [t.get_text() for t in figures[stem].legends[0].get_texts()] == list(AGGREGATORS)
    assert figures["curves"].axes[0].get_ylim() == (0, 1)
    assert figures["diagnostics"].axes[0].get_yscale() == "log"


def test_another_metric_changes_the_grid_and_worst_case_not_the_table(grid):
    runs, out, _ = grid
    other = out.parent / "last5"
    files = write_report(runs, other, metric="last5", diagnostics=False)
    assert not [p for p in files if p.name.startswith("diagnostics")]
    assert (other / "table.csv").read_bytes() == (out / "table.csv").read_bytes()
    assert {r["metric"] for r in _rows(other / "worst_case.csv")} == {"last5"}
    page = (other / "report.md").read_text()
    assert "## Accuracy: test accuracy, mean of the last 5 evaluations" in page
    for (aggregator, attack), metrics in _expected(runs).items():
        assert _cell(*metrics["last5"]) in page
