"""Reproduction studies: the catalogue, the claims on hand-made tables, the command, and each --quick variant."""
import csv
import math

import pytest

from experiments.tools import UserException
from simulator.cli.main import main
from simulator.grid import load_grids
from simulator.core.provenance import machine
from simulator.studies import FAILS, HOLDS, NOT_COMPARABLE, Results, check_claims, get, names, reproduce
from simulator.studies.study import UNDECIDED

STUDIES = ("alie", "bucketing", "krum", "momentum")


def test_the_four_studies_are_listed_with_their_claims(capsys):
    assert set(STUDIES) <= set(names())  # the four papers; other studies may join them
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


def test_results_find_groups_by_any_spelling_of_a_rule(group):
    table = Results([group("cclip(tau=10)", "ipm(epsilon=0.1)", 0.9, lr=0.1)], "final")
    assert table.value(aggregator="cclip", attack="ipm", lr=0.1) == 0.9
    assert math.isnan(table.value(aggregator="krum", attack="ipm"))


def test_every_claim_quotes_or_paraphrases_its_source_and_every_study_shows_final_beside_best():
    for name in STUDIES:
        study = get(name)
        assert all(claim.source for claim in study.claims), name
        assert set(study.beside) | {study.metric} >= {"final", "best"}


def spread(value, d=0.0):
    """Three seeds around ``value``: value - d, value, value + d (sample sd d)."""
    return [value - d, value, value + d]


KRUM = "gaussian(std=200)"


def krum_table(group, krum_hit=None, krum_free=0.79, average_free=0.84):
    """Average, Krum and Multi-Krum without attack (f = 0) and under Gaussian workers at f = 2 and 4, 3 seeds."""
    krum_hit = krum_hit or {2: spread(0.795, 0.005), 4: spread(0.80, 0.005)}
    rows = [group("average", "none", spread(average_free, 0.005), nb_real_byz=0),
            group("krum", "none", spread(krum_free, 0.005), nb_real_byz=0)]
    for f in (2, 4):
        rows += [group("average", KRUM, spread(0.10, 0.01), nb_real_byz=f),
                 group("krum", KRUM, [[0.3, 0.5, 0.7, v] for v in krum_hit[f]], nb_real_byz=f),
                 group("multikrum", KRUM, [[0.5, 0.7, 0.8, 0.84]] * 3, nb_real_byz=f)]
    return rows


def test_krum_claims_on_a_hand_made_table(group):
    checks = {claim.check.__name__: claim.check for claim in get("krum").claims}
    results = Results(krum_table(group), "final")
    assert {name: check(results).status for name, check in checks.items()} == {
        "krum_is_unmoved": HOLDS, "averaging_fails": HOLDS, "cost_of_resilience": HOLDS,
        "multikrum_is_faster": HOLDS, "multikrum_tracks_the_average": HOLDS}
    assert "f=2: 0.5 ± 0.0" in checks["krum_is_unmoved"](results).ours  # 79.5 against 79.0, seed by seed


def test_krum_claims_undecided_when_the_bar_lies_in_the_interval(group):
    d = 0.022 * math.sqrt(3) / 4.302652729749464  # the seeds' spread that gives a half-width of 2.2 points
    # Krum 5.05 points below the attack-free average at f = 4, +/- 2.2: the 5-point bar lies in the interval
    gap = [a - g for a, g in zip(spread(0.84, 0.005), spread(0.0505, d))]  # seed by seed
    results = Results(krum_table(group, {2: spread(0.795, 0.005), 4: gap}), "final")
    verdict = get("krum").claims[2].check(results)
    assert verdict.status == UNDECIDED and "f=4: 5.0 ± 2.2" in verdict.ours and verdict.reason.endswith("(f = 4)")
    # Krum under attack within 5 points of Krum without attack, but the interval reaches past it
    unsure = Results(krum_table(group, {2: spread(0.795, 0.005), 4: [0.72, 0.79, 0.80]}), "final")
    assert get("krum").claims[0].check(unsure).status == UNDECIDED
    far = Results(krum_table(group, {2: spread(0.795, 0.005), 4: spread(0.60, 0.005)}), "final")
    assert get("krum").claims[0].check(far).status == FAILS
    assert get("krum").claims[0].check(Results(krum_table(group)[:1], "final")).status == NOT_COMPARABLE


def alie_table(group, losses):
    """Each rule without attack at 90% and under ALIE ``losses[rule]`` (three seeds' losses) below it."""
    rows = []
    for rule, loss in losses.items():
        rows += [group(rule, "none", spread(0.90, 0.01)), group(rule, "alie", [0.90 + d - x for d, x in
                                                                              zip((-0.01, 0, 0.01), loss)])]
    return rows


def test_alie_claim_needs_every_one_of_the_authors_defences(group):
    big, small, unsure = spread(0.2), spread(0.02), [0.02, 0.10, 0.18]
    circumvented, median = get("alie").claims
    results = Results(alie_table(group, {"average": small, "krum": big, "trmean": big, "bulyan": big,
                                         "median": big}), "best")
    assert circumvented.check(results).status == HOLDS and median.check(results).status == HOLDS
    assert "krum 20.0 ± 0.0" in circumvented.check(results).ours and "no defence: 2.0" in circumvented.check(results).ours
    one_small = Results(alie_table(group, {"average": small, "krum": big, "trmean": small, "bulyan": big}), "best")
    verdict = circumvented.check(one_small)
    assert verdict.status == FAILS and verdict.reason.startswith("trmean")  # 2 of 3 is not enough
    open_ = Results(alie_table(group, {"average": small, "krum": big, "trmean": big, "bulyan": unsure}), "best")
    assert circumvented.check(open_).status == UNDECIDED and "bulyan" in circumvented.check(open_).reason
    assert median.check(open_).status == NOT_COMPARABLE  # the median did not run
    no_bulyan = Results(alie_table(group, {"average": small, "krum": big, "trmean": big}), "best")
    assert circumvented.check(no_bulyan).status == NOT_COMPARABLE


def test_momentum_claims_count_damaged_settings_and_recoveries(group):
    base = dict(nb_real_byz=12, lr=0.5, nesterov=False)
    rows = [group("average", "none", [0.90] * 5, nb_workers=39, lr=0.5, nesterov=False)]
    cells = {"median": (0.50, 0.70), "trmean": (0.60, 0.62), "bulyan": (0.85, 0.86), "phocas": (0.50, 0.75)}
    for rule, (update, worker) in cells.items():
        rows += [group(rule, "alie(z=1.5)", [update] * 5, momentum_at="update", **base),
                 group(rule, "alie(z=1.5)", [worker] * 5, momentum_at="worker", **base)]
    recovers, helps = get("momentum").claims
    verdict = recovers.check(Results(rows, "best"))
    # damaged: median, trmean, phocas (bulyan loses 5 of 90); recovered a fifth: median, phocas: 2/3 > 60%
    assert verdict.status == HOLDS and verdict.ours.startswith("2/3 settings") and "momentum_at" in verdict.ours
    assert helps.check(Results(rows, "best")).status == HOLDS  # worker ahead in all three
    rows[3:5] = [group("trmean", "alie(z=1.5)", [0.60] * 5, momentum_at="update", **base),
                 group("trmean", "alie(z=1.5)", [0.40, 0.50, 0.60, 0.70, 0.80], momentum_at="worker", **base)]
    assert helps.check(Results(rows, "best")).status == UNDECIDED  # trmean's gain is 0 +/- 20 points
    rows[1:3] = [group("median", "alie(z=1.5)", [0.50] * 5, momentum_at="update", **base),
                 group("median", "alie(z=1.5)", [0.50] * 5, momentum_at="worker", **base)]
    verdict = recovers.check(Results(rows, "best"))  # median misses, trmean is open, phocas recovers
    assert verdict.status == UNDECIDED and verdict.ours.startswith("1/3 (worst) to 2/3 (best)")
    rows[7:9] = [group("phocas", "alie(z=1.5)", [0.50] * 5, momentum_at="update", **base),
                 group("phocas", "alie(z=1.5)", [0.50] * 5, momentum_at="worker", **base)]
    assert recovers.check(Results(rows, "best")).status == FAILS  # 1/3 at best


def bucketing_table(group, values, momentum=None, free=0.90):
    from simulator.studies.papers import bucketing as b

    sorted_ = dict(heterogeneity="extreme", momentum=0.0)
    rows = [group("average", "none", spread(free, 0.005), **sorted_)]
    for rule, (without, with_) in values.items():
        for spec in b.ATTACKS.values():
            rows += [group(rule, spec, spread(without, 0.005), **sorted_),
                     group(f"bucketing(s=2)>{rule}", spec, spread(with_, 0.005), **sorted_)]
    for spec, value in zip(b.ATTACKS.values(), momentum or []):
        rows.append(group("cclip(iters=3)", spec, value, heterogeneity="extreme", momentum=0.9))
    return rows


def test_bucketing_claims_and_comparison_on_a_hand_made_table(group):
    from simulator.studies.papers import bucketing as b

    values = {"median": (0.50, 0.80), "krum": (0.30, 0.60), b.RFA: (0.85, 0.89), "cclip(iters=3)": (0.88, 0.89)}
    rows = bucketing_table(group, values, momentum=[spread(0.9, 0.005)] * 5)
    rows += [group("median", b.ATTACKS["mimic"], 0.87, heterogeneity="iid", momentum=0.0)]
    results = Results(rows, "last5")
    assert [c.check(results).status for c in get("bucketing").claims] == [HOLDS] * 5
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


def test_bucketing_cclip_claims_are_three_and_momentum_is_its_own(group):
    from simulator.studies.papers import bucketing as b

    plain, bucketed, momentum = (get("bucketing").claims[i] for i in (2, 3, 4))
    good, low = spread(0.88, 0.005), spread(0.50, 0.005)
    one_low = [good] * 4 + [low]
    rows = bucketing_table(group, {"cclip(iters=3)": (0.88, 0.89)}, momentum=[good] * 2 + [low] * 3)
    results = Results(rows, "last5")
    assert plain.check(results).status == HOLDS and bucketed.check(results).status == HOLDS
    verdict = momentum.check(results)  # the paper's 5/5 against our 2/5: its own claim, not hidden in an "or"
    assert verdict.status == FAILS and verdict.ours.startswith("2/5 attacks") and "IPM, ALIE" in verdict.reason
    rows = bucketing_table(group, {"cclip(iters=3)": (0.88, 0.89)}, momentum=one_low[:4] + [[0.80, 0.85, 0.90]])
    verdict = momentum.check(Results(rows, "last5"))  # ALIE's gap is 5 +/- 12 points: the interval decides nothing
    assert verdict.status == UNDECIDED and verdict.ours.startswith("4/5 (worst) to 5/5 (best)")
    assert momentum.check(Results(rows[:1], "last5")).status == NOT_COMPARABLE
    del b


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
    assert {v.status for v in done.verdicts} <= {HOLDS, FAILS, UNDECIDED, NOT_COMPARABLE}
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
    with open(tmp_path / "claims.csv", newline="") as handle:
        claims = list(csv.DictReader(handle))
    assert [row["verdict"] for row in claims] == [v.status for v in done.verdicts]
    assert all(row["source"] and row["ours (best)"] and row["verdict (best)"] for row in claims)  # beside final
    shown = (tmp_path / "claims.md").read_text()
    assert "| # | claim | ours (final) | verdict | ours (best) | paper | reason |" in shown
    assert "What the paper says, claim by claim:" in shown and "Paraphrase" in shown


def test_the_command_passes_records_to_the_grid(tmp_path, monkeypatch):
    from simulator.grid import GridOutcome
    from simulator.studies import pipeline

    seen = {}
    monkeypatch.setattr(pipeline, "run_grid", lambda *a, **kw: seen.update(kw) or GridOutcome())
    assert main(["reproduce", "krum", "--quick", "--quiet", "--output", str(tmp_path / "runs"),
                 "--records", str(tmp_path / "records")]) == 0
    assert seen["records"] == str(tmp_path / "records")


def test_a_quick_study_is_labelled_a_smoke_test(tmp_path, monkeypatch, capsys):
    """The quick variant's verdicts are printed and written as a smoke test, never as the study's verdicts."""
    import types

    import simulator.studies as studies
    from simulator.cli.main import main as byzsim
    from simulator.grid import GridOutcome
    from simulator.studies.pipeline import SMOKE, _write_claims
    from simulator.studies.study import FAILS, Verdict

    study = studies.get("krum")
    verdict = Verdict(FAILS, "ours", "paper", "why")
    done = types.SimpleNamespace(study=study, verdicts=[verdict] * len(study.claims), dataset="digits",
                                 dataset_note="asked for", output=tmp_path, outcome=GridOutcome(done=1))
    monkeypatch.setattr(studies, "reproduce", lambda *args, **kwargs: done)
    assert byzsim(["reproduce", "krum", "--quick"]) == 0
    out, err = capsys.readouterr()
    assert SMOKE in err and out.count("does not hold (smoke test)") == len(study.claims)
    rows = [{"claim": c.text, "source": "", f"ours ({study.metric})": "x", "verdict": FAILS, "paper": "p",
             "reason": "r", **{f"ours ({m})": "x" for m in study.beside}, **{f"verdict ({m})": FAILS
                                                                           for m in study.beside}}
            for c in study.claims]
    _write_claims(study, rows, [], tmp_path, smoke=True)
    text = (tmp_path / "claims.md").read_text()
    assert text.startswith("# Smoke test of the claims") and SMOKE in text
