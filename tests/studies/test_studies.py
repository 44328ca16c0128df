"""Reproduction studies: the catalogue, the claims on hand-made tables, the command, and each --quick variant."""
import csv
import math

import numpy as np
import pytest

from experiments.tools import UserException
from simulator.cli.main import main
from simulator.grid import load_grids
from simulator.core.provenance import machine
from simulator.report.load import Group
from simulator.report.stats import Summary
from simulator.studies import FAILS, HOLDS, NOT_COMPARABLE, Results, check_claims, get, names, reproduce

STUDIES = ("alie", "bucketing", "krum", "momentum")


def test_the_four_studies_are_listed_with_their_claims(capsys):
    assert set(names()) == set(STUDIES)
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in STUDIES:
        study = get(name)
        assert f"{name}: {study.citation}" in out and all(claim.text in out for claim in study.claims)
        assert study.notes_file.exists() or name != "bucketing"


@pytest.mark.parametrize("name", STUDIES)
def test_every_study_grid_expands_into_full_and_quick(name):
    grids = load_grids(get(name).grid_file)
    assert set(grids) == {"full", "quick"}
    assert len(grids["quick"].configs) < len(grids["full"].configs)
    assert {c.seed for c in grids["quick"].configs} == {min(c.seed for c in grids["full"].configs)}


def summary(aggregator, attack, value, curve=None, **identity):
    accuracy = np.array([curve if curve is not None else [value]])
    full = {"aggregator": aggregators_canonical(aggregator), "attack": attacks_canonical(attack), **identity}
    group = Group(aggregator=aggregator, attack=attack, setting=(), identity=full, seeds=(1,),
                  steps=np.arange(accuracy.shape[1]), accuracy=accuracy, val_accuracy=None,
                  metric_steps=np.array([]), distance_ratio=np.array([]))
    return Summary(group, {m: value for m in ("final", "best", "last5")}, {m: math.nan for m in ("final", "best", "last5")})


def aggregators_canonical(spec):
    import aggregators
    return aggregators.get(spec).canonical


def attacks_canonical(spec):
    import attacks
    return attacks.get(spec).canonical


def test_results_find_groups_by_any_spelling_of_a_rule():
    table = Results([summary("cclip(tau=10)", "ipm(epsilon=0.1)", 0.9, lr=0.1)], "final")
    assert table.value(aggregator="cclip", attack="ipm", lr=0.1) == 0.9
    assert math.isnan(table.value(aggregator="krum", attack="ipm"))


def test_krum_claims_on_a_hand_made_table():
    g = "gaussian(std=200)"
    rows = [summary("average", "none", 0.90, nb_real_byz=0),
            *[summary("average", g, 0.10, nb_real_byz=f) for f in (2, 6)],
            *[summary("krum", g, 0.88, [0.1, 0.5, 0.88, 0.88], nb_real_byz=f) for f in (2, 6)],
            *[summary("multikrum", g, 0.89, [0.1, 0.8, 0.89, 0.89], nb_real_byz=f) for f in (2, 6)]]
    verdicts = [claim.check(Results(rows, "final")) for claim in get("krum").claims]
    assert [v.status for v in verdicts] == [HOLDS, HOLDS, HOLDS]
    rows[1] = summary("average", g, 0.5, nb_real_byz=2)
    assert get("krum").claims[0].check(Results(rows, "final")).status == FAILS
    assert get("krum").claims[1].check(Results(rows[:3], "final")).status == NOT_COMPARABLE


def test_alie_claim_compares_each_rules_loss_with_the_averages():
    rows = [summary("average", "none", 0.95), summary("average", "alie", 0.93)]
    rows += [summary(r, "none", 0.94) for r in ("krum", "trmean", "bulyan", "median")]
    rows += [summary(r, "alie", v) for r, v in (("krum", 0.5), ("trmean", 0.7), ("bulyan", 0.6), ("median", 0.92))]
    (claim,) = get("alie").claims
    verdict = claim.check(Results(rows, "best"))
    assert verdict.status == HOLDS and "krum -44.0" in verdict.ours  # 3 of 4 rules lose 10+ points


def test_momentum_claim_counts_costly_settings_and_recoveries():
    base = dict(nb_real_byz=12, lr=0.5, nesterov=False)
    rows = [summary("average", "none", 0.90, nb_workers=39, lr=0.5, nesterov=False)]
    for rule, update, worker in (("median", 0.50, 0.70), ("trmean", 0.60, 0.62), ("bulyan", 0.85, 0.86)):
        rows += [summary(rule, "alie(z=1.5)", update, momentum_at="update", **base),
                 summary(rule, "alie(z=1.5)", worker, momentum_at="worker", **base)]
    (claim,) = get("momentum").claims
    verdict = claim.check(Results(rows, "best"))
    assert verdict.status == FAILS and verdict.ours.startswith("1/2")  # median recovers half, trmean 7%; bulyan not costly


def test_bucketing_claims_and_comparison_on_a_hand_made_table():
    from simulator.studies.papers import bucketing as b

    sorted_, rows = dict(heterogeneity="extreme", momentum=0.0), [summary("average", "none", 0.90,
                                                                          heterogeneity="extreme", momentum=0.0)]
    values = {"median": (0.50, 0.80), "krum": (0.30, 0.60), b.RFA: (0.85, 0.89), "cclip(iters=3)": (0.88, 0.89)}
    for rule, (without, with_) in values.items():
        for spec in b.ATTACKS.values():
            rows += [summary(rule, spec, without, **sorted_), summary(f"bucketing(s=2)>{rule}", spec, with_, **sorted_)]
    rows += [summary("cclip(iters=3)", spec, 0.9, heterogeneity="extreme", momentum=0.9)
             for spec in b.ATTACKS.values()]
    rows += [summary("median", b.ATTACKS["mimic"], 0.87, heterogeneity="iid", momentum=0.0)]
    results = Results(rows, "last5")
    assert [c.check(results).status for c in get("bucketing").claims] == [HOLDS, HOLDS, HOLDS]
    assert "CM 5/5" in get("bucketing").claims[0].check(results).ours
    assert "15/15 cells" in get("bucketing").claims[1].check(results).ours  # CM, Krum, RFA lose 5+; CClip 2
    table = b.beside_the_paper(results)
    assert len(table) == 1 + 20 + 5 + 5
    cm_bf = next(r for r in table if r["setting"] == "CM, label-sorted" and r["attack"] == "BF")
    assert cm_bf == {"setting": "CM, label-sorted", "attack": "BF", "ours": "50.0", "ours, bucketing": "80.0",
                     "paper": "37.2", "paper, bucketing": "46.9"}
    momentum = next(r for r in table if "momentum" in r["setting"])
    assert (momentum["ours"], momentum["ours, bucketing"]) == ("90.0", "not run")  # a cell of the design, not run
    iid = {r["setting"]: r for r in table if "IID" in r["setting"]}
    assert iid["CM, IID"]["ours"] == "87.0" and iid["Krum, IID"]["ours"] == "not run"
    assert iid["CM, IID"]["ours, bucketing"] == "-" and iid["CM, IID"]["paper"] == "90.8"


def test_bucketing_cclip_claim_names_which_half_of_it_fails():
    from simulator.studies.papers import bucketing as b

    def verdict(plain: list[float], bucketed: list[float], momentum: list[float]):
        sorted_ = dict(heterogeneity="extreme")
        rows = [summary("average", "none", 0.90, momentum=0.0, **sorted_)]
        for spec, p, q, m in zip(b.ATTACKS.values(), plain, bucketed, momentum):
            rows += [summary("cclip(iters=3)", spec, p, momentum=0.0, **sorted_),
                     summary("bucketing(s=2)>cclip(iters=3)", spec, q, momentum=0.0, **sorted_),
                     summary("cclip(iters=3)", spec, m, momentum=0.9, **sorted_)]
        return b.cclip_stays_close(Results(rows, "last5"))

    good, one_low, two_low = [0.88] * 5, [0.88] * 4 + [0.5], [0.88] * 3 + [0.5] * 2
    assert verdict(one_low, good, one_low).status == HOLDS  # 4/5 plain, all with bucketing
    unhelped = verdict(good, one_low, one_low)
    assert unhelped.status == FAILS and "neither bucketing nor momentum" in unhelped.reason
    assert "CClip 5/5, with bucketing 4/5, with momentum 4/5" in unhelped.ours
    plain = verdict(two_low, good, good)
    assert plain.status == FAILS and "more than a fifth of the attacks" in plain.reason


def test_unknown_study_and_missing_name_are_user_errors(capsys):
    with pytest.raises(UserException, match="Unknown study 'bucket'"):
        get("bucket")
    assert main(["reproduce"]) == 2
    assert "Name a study" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", STUDIES)
def test_the_quick_variant_runs_and_checks_its_claims(name, tmp_path):
    records = tmp_path / "published" / "runs"
    done = reproduce(name, quick=True, jobs=2, output=tmp_path / "runs", publish=tmp_path / "published",
                     records=records, progress=False)
    assert done.outcome.failed == 0 and done.verdicts is not None
    assert len(done.verdicts) == len(get(name).claims)
    assert {v.status for v in done.verdicts} <= {HOLDS, FAILS, NOT_COMPARABLE}
    readme = (tmp_path / "published" / "README.md").read_text()
    assert "## Claims" in readme and "byzsim reproduce" in readme and done.dataset in readme
    assert f"wall times) on {machine()}, 1 torch thread a run." in readme  # every run made here: named once
    assert (tmp_path / "published" / "claims.csv").exists() and (tmp_path / "published" / "report.md").exists()
    assert ("## Beside the paper" in readme) == (get(name).comparison is not None)
    assert (tmp_path / "published" / "comparison.csv").exists() == (get(name).comparison is not None)
    assert not list((tmp_path / "published").rglob("*.pdf")) and not list((tmp_path / "published").rglob("*.pt"))
    assert check_claims(get(name), tmp_path / "runs") == done.verdicts
    assert f"--records {records}" in readme and len(list(records.glob("*/summary.json"))) == len(done.grid.configs)
    again = reproduce(name, quick=True, output=tmp_path / "fresh", records=records, progress=False)
    assert again.outcome.done == 0 and again.verdicts == done.verdicts  # carried by the records alone


def test_a_study_reads_only_its_own_runs_from_a_shared_output_folder(tmp_path, monkeypatch, finished_run):
    """A run of another grid left in the output folder is in neither the claims nor the report."""
    import dataclasses

    from simulator.grid import GridOutcome
    from simulator.studies import pipeline

    def fake_grid(grid, out, **_):
        for config in grid.configs:
            finished_run(dataclasses.replace(config, output=str(out)), [0.5, 0.8])
        finished_run(dataclasses.replace(grid.configs[-1], output=str(out), seed=7), [0.1, 0.1])  # another seed
        return GridOutcome()

    monkeypatch.setattr(pipeline, "run_grid", fake_grid)
    done = reproduce("krum", quick=True, dataset="digits", output=tmp_path, progress=False)
    assert done.verdicts is not None and len(list(tmp_path.glob("*/summary.json"))) == len(done.grid.configs) + 1
    with open(tmp_path / "table.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert table and {row["seeds"] for row in table} == {"1"} and {row["final_mean"] for row in table} == {"0.8"}
    assert check_claims(get("krum"), tmp_path) != done.verdicts  # read with the stray run, the claims change


def test_the_command_passes_records_to_the_grid(tmp_path, monkeypatch):
    from simulator.grid import GridOutcome
    from simulator.studies import pipeline

    seen = {}
    monkeypatch.setattr(pipeline, "run_grid", lambda *a, **kw: seen.update(kw) or GridOutcome())
    assert main(["reproduce", "krum", "--quick", "--quiet", "--output", str(tmp_path / "runs"),
                 "--records", str(tmp_path / "records")]) == 0
    assert seen["records"] == str(tmp_path / "records")
