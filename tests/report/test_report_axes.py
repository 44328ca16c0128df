"""Settings that vary: a real grid over the number of attackers and the data split
(digits, 2 rules x 2 attacks x f in {1, 2} x {iid, dirichlet}, one seed)."""
import csv
import itertools
import json

import numpy as np
import pytest

from simulator import Config, run
from simulator.report import load, summarise, worst_cases, write_report
from simulator.report.plots import plots

AGGREGATORS = ("median", "trmean")
ATTACKS = ("alie", "signflip")
SPLITS = ("iid", "dirichlet(alpha=1.0)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("axes") / "runs"
    for aggregator, attack, f, split in itertools.product(AGGREGATORS, ATTACKS, (1, 2), SPLITS):
        run(Config(dataset="digits", nb_workers=7, nb_decl_byz=2, nb_real_byz=f, aggregator=aggregator,
                   attack=attack, steps=2, eval_every=1, batch_size=16, seed=3, output=str(root), heterogeneity=split),
            progress=False)
    return root


@pytest.fixture(scope="module")
def figures(runs):
    design = load(runs)
    summaries = summarise(design)
    return {p.stem: p for p in plots(design, summaries, worst_cases(summaries, "final"), "final",
                                     diagnostics=False)}


def _finals(runs) -> dict:
    """(aggregator, attack, f, heterogeneity) -> final accuracy, from the runs' files."""
    out = {}
    for folder in (p.parent for p in runs.rglob("summary.json")):
        config = json.loads((folder / "config.json").read_text())
        with open(folder / "evaluations.csv") as handle:
            final = float(list(csv.DictReader(handle))[-1]["accuracy"])
        out[config["aggregator"], config["attack"], config["nb_real_byz"], config["heterogeneity"]] = final
    return out


def test_the_varying_fields_make_the_settings_and_the_rest_is_fixed(runs):
    design = load(runs)
    assert design.setting_fields == ("nb_real_byz", "heterogeneity")  # the split is one spec field
    assert design.fixed["nb_decl_byz"] == 2 and design.fixed["dataset"] == "digits"
    assert len(design.settings) == 4 and len(design.groups) == 16


def test_one_heatmap_and_curve_figure_per_setting_and_one_axis_heatmap_per_remaining_setting(figures):
    settings = [f"f={f}_heterogeneity={h}" for f, h in itertools.product((1, 2), ("iid", "dirichlet_alpha=1.0"))]
    assert sorted(figures) == sorted([
        *(f"heatmap-attacks-{s}" for s in settings), *(f"curves-{s}" for s in settings),
        "heatmap-f-heterogeneity=iid", "heatmap-f-heterogeneity=dirichlet_alpha=1.0",
        "heatmap-heterogeneity-f=1", "heatmap-heterogeneity-f=2",
    ])


def test_the_f_heatmap_holds_the_worst_case_over_attacks_at_each_f(runs, figures):
    finals = _finals(runs)
    ax = figures["heatmap-f-heterogeneity=iid"].figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["f=1", "f=2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(AGGREGATORS)
    expected = [[min(finals[a, attack, f, "iid"] for attack in ATTACKS) for f in (1, 2)] for a in AGGREGATORS]
    np.testing.assert_allclose(ax.images[0].get_array(), expected)
    title = ax.figure.get_suptitle()
    assert "heterogeneity=iid" in title and "dataset=digits" in title
    worst_attack = min(ATTACKS, key=lambda attack: finals["median", attack, 1, "iid"])
    assert any(t.get_text().endswith(f"\n{worst_attack}") for t in ax.texts)


def test_the_heterogeneity_heatmap_has_one_column_per_split(runs, figures):
    finals = _finals(runs)
    ax = figures["heatmap-heterogeneity-f=2"].figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dirichlet(alpha=1.0)", "iid"]
    expected = [[min(finals[a, attack, 2, h] for attack in ATTACKS) for h in ("dirichlet", "iid")]
                for a in AGGREGATORS]
    np.testing.assert_allclose(ax.images[0].get_array(), expected)
    assert "f=2" in ax.figure.get_suptitle()


def test_the_report_writes_each_figure_as_png_and_pdf_and_a_table_per_setting(runs, figures, tmp_path):
    files = write_report(runs, tmp_path, diagnostics=False)
    images = {p.name for p in files if p.parent.name == "figures"}
    assert images == {f"{stem}.{fmt}" for stem in figures for fmt in ("png", "pdf")}
    page = (tmp_path / "report.md").read_text()
    assert page.count("| aggregator | alie | signflip |") == 4
    assert "### f=2, heterogeneity=dirichlet(alpha=1.0)" in page
    with open(tmp_path / "worst_case.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and {r["nb_real_byz"] for r in rows} == {"1", "2"}
    assert all(r["attack_free"] == "" and r["drop"] == "" for r in rows)  # no attack-free run in this grid


def test_curves_run_over_steps_and_over_rounds_for_federated_runs(figures, tmp_path):
    assert all(ax.get_xlabel() in ("step", "") for p in figures.values() if p.stem.startswith("curves")
               for ax in p.figure.axes)
    root = tmp_path / "federated"
    for aggregator in AGGREGATORS:
        run(Config(dataset="digits", clients=8, clients_per_round=6, nb_real_byz=1, nb_decl_byz=1, local_steps=2,
                   aggregator=aggregator, attack="signflip", steps=2, eval_every=1, batch_size=16,
                   output=str(root)), progress=False)
    design = load(root)
    summaries = summarise(design)
    (curves,) = [p for p in plots(design, summaries, worst_cases(summaries, "final"), "final", diagnostics=False)
                 if p.stem.startswith("curves")]
    assert "vs round" in curves.caption
    assert {ax.get_xlabel() for ax in curves.figure.axes if ax.get_visible()} == {"round"}
