"""Errors a user can cause end in one UserException sentence naming the folder or field,
and the small rules of the numbers: intervals, ties, the attack-free reference."""
import csv
import math

import numpy as np
import pytest
from scipy import stats

from experiments.tools import UserException
from simulator import Config
from simulator.report import load, mean_ci, summarise, worst_cases, write_report
from simulator.report.naming import describe, slugs
from simulator.report.stats import best_rules


@pytest.fixture
def fake_run(finished_run):
    """A finished run on digits under ``root`` (n = 7, f = 1 unless ``fields`` say otherwise), written by hand."""
    def write(root, accuracy: list[float], losses: list[float] | None = None, **fields) -> None:
        config = Config(**{"dataset": "digits", "nb_workers": 7, "nb_decl_byz": 1, "output": str(root), **fields})
        finished_run(config, accuracy, losses=losses)
    return write


def test_runs_whose_loss_became_nan_or_infinite_are_named_with_the_step(tmp_path, fake_run):
    fake_run(tmp_path, [0.3, 0.5, 0.1, 0.1], [2.0, 700.0, math.nan, math.nan], aggregator="krum", attack="bitflip")
    fake_run(tmp_path, [0.3, 0.2, 0.1], [2.0, math.inf, math.nan], aggregator="median", attack="bitflip")
    fake_run(tmp_path, [0.3, 0.6, 0.7], aggregator="median", attack="none")
    design = load(tmp_path)
    krum, median = (Config(dataset="digits", nb_workers=7, nb_decl_byz=1, aggregator=a, attack="bitflip").run_id()
                    for a in ("krum", "median"))
    assert sorted(design.diverged) == sorted([(krum, 20), (median, 10)])
    write_report(tmp_path, diagnostics=False, formats=("png",))
    page = (tmp_path / "report.md").read_text()
    assert "2 runs diverged" in page and f"`{krum}` (step 20)" in page and f"`{median}` (step 10)" in page


def test_a_report_of_finite_runs_names_none_as_diverged(tmp_path, fake_run):
    fake_run(tmp_path, [0.3, 0.6], aggregator="median", attack="none")
    assert load(tmp_path).diverged == ()
    write_report(tmp_path, diagnostics=False, formats=("png",))
    assert "diverged (the step" not in (tmp_path / "report.md").read_text()


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(UserException, match="'.*nowhere' does not exist"):
        write_report(tmp_path / "nowhere")


def test_a_folder_without_finished_runs_is_named(tmp_path):
    (tmp_path / "grid.toml").write_text("steps = 10\n")
    (tmp_path / "errors").mkdir()
    (tmp_path / "run-in-progress").mkdir()
    (tmp_path / "run-in-progress" / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(UserException, match=f"No finished run .* under '{tmp_path}'"):
        write_report(tmp_path)
    assert not (tmp_path / "report.md").exists()


def test_an_unknown_metric_or_a_field_that_does_not_vary_is_refused(tmp_path, fake_run):
    fake_run(tmp_path, [0.5], aggregator="median", attack="alie")
    with pytest.raises(UserException, match="Unknown metric 'worst'"):
        write_report(tmp_path, metric="worst")
    with pytest.raises(UserException, match="'lr'.*not a setting that varies"):
        write_report(tmp_path, select="lr")
    with pytest.raises(UserException, match="'seed'"):
        write_report(tmp_path, select="seed")


def test_an_unreadable_run_folder_is_named(tmp_path, fake_run):
    fake_run(tmp_path, [0.5], aggregator="median", attack="alie")
    broken = next(tmp_path.rglob("config.json"))
    broken.write_text("{not json")
    with pytest.raises(UserException, match=f"Run folder '{broken.parent}': config.json cannot be read"):
        write_report(tmp_path)


def test_the_interval_is_student_t_and_undefined_for_one_seed():
    values = np.array([[0.5, 0.7, 0.9], [0.6, 0.6, 0.7]]).T  # three seeds, two columns
    mean, half = mean_ci(values)
    np.testing.assert_allclose(mean, [0.7, 19 / 30])
    np.testing.assert_allclose(half[0], stats.t.ppf(0.975, 2) * 0.2 / math.sqrt(3))
    assert np.isnan(mean_ci(np.array([[0.4]]))[1]).all()


def test_one_seed_leaves_the_interval_blank_and_none_is_only_the_reference(tmp_path, fake_run):
    fake_run(tmp_path, [0.1, 0.9], aggregator="median", attack="none")
    fake_run(tmp_path, [0.1, 0.4], aggregator="median", attack="alie")
    fake_run(tmp_path, [0.1, 0.6, 0.5], aggregator="median", attack="signflip")
    write_report(tmp_path, diagnostics=False)
    table = (tmp_path / "table.csv").read_text().splitlines()
    assert table[1].startswith("median,none,1,0.9,,,,0.9,,,,") and table[3].startswith("median,signflip,1,0.5,,,,0.6,,")
    worst = (tmp_path / "worst_case.csv").read_text().splitlines()[1]
    assert worst == "median,final,0.4,alie,0.9,,0.5,True"
    assert "| median | 0.900 (1) | 0.400 (1) | 0.500 (1) |" in (tmp_path / "report.md").read_text()


def _references(root) -> dict[tuple[int, int, float], tuple[float, str]]:
    """(n, f, lr) -> (attack-free accuracy, where it came from) of median's worst case, from worst_case.csv."""
    write_report(root, diagnostics=False, formats=("png",))
    with open(root / "worst_case.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {(int(r.get("nb_workers") or 7), int(r["nb_real_byz"]), float(r.get("lr") or 0.1)):
            (float(r["attack_free"] or "nan"), r["attack_free_from"]) for r in rows if r["aggregator"] == "median"}


def test_the_honest_workers_alone_are_the_reference_of_the_attacked_setting(tmp_path, fake_run):
    fake_run(tmp_path, [0.8], aggregator="median", attack="none", nb_workers=6, nb_real_byz=0)  # the 6 honest
    fake_run(tmp_path, [0.7], aggregator="median", attack="none", nb_workers=7, nb_real_byz=0)  # 7 honest
    fake_run(tmp_path, [0.3], aggregator="median", attack="alie")  # n = 7, f = 1: six honest workers
    fake_run(tmp_path, [0.2], aggregator="median", attack="alie", lr=0.05)  # no attack-free run at this lr
    refs = _references(tmp_path)
    assert refs[7, 1, 0.1] == (0.8, "n=6, f=0, lr=0.1")  # the same number of honest workers preferred
    assert refs[6, 0, 0.1] == (0.8, "") and refs[7, 0, 0.1] == (0.7, "")  # their own
    assert math.isnan(refs[7, 1, 0.05][0]) and refs[7, 1, 0.05][1] == ""  # the lr differs: no reference
    page = (tmp_path / "report.md").read_text()
    assert "| median | 0.300 | alie | 0.800 | 0.500 |" in page
    assert "No attack: the `none` runs of n=6, f=0, lr=0.1." in page


def test_a_single_attack_free_setting_of_other_worker_counts_is_the_reference(tmp_path, fake_run):
    fake_run(tmp_path, [0.9], aggregator="median", attack="none", nb_decl_byz=0)  # n = 7, none Byzantine
    fake_run(tmp_path, [0.4], aggregator="median", attack="alie", nb_decl_byz=2)
    refs = _references(tmp_path)
    assert refs[7, 2, 0.1] == (0.9, "f=0, declared f=0")


def test_an_ambiguous_attack_free_reference_is_left_blank(tmp_path, fake_run):
    for n in (5, 8):  # neither has the attacked setting's 6 honest workers
        fake_run(tmp_path, [0.9], aggregator="median", attack="none", nb_workers=n, nb_real_byz=0)
    fake_run(tmp_path, [0.4], aggregator="median", attack="alie")
    value, source = _references(tmp_path)[7, 1, 0.1]
    assert math.isnan(value) and source == ""


def test_a_tie_names_every_best_rule(tmp_path, fake_run):
    for aggregator in ("median", "trmean", "krum"):
        fake_run(tmp_path, [0.3 if aggregator == "krum" else 0.6], aggregator=aggregator, attack="alie")
    summaries = summarise(load(tmp_path))
    best = best_rules(worst_cases(summaries, "final"))
    assert [w.aggregator for w in best[()]] == ["median", "trmean"]
    write_report(tmp_path, diagnostics=False)
    assert "Best rule: **median** = **trmean** (worst case 0.600)." in (tmp_path / "report.md").read_text()


def test_settings_read_short_and_make_distinct_file_names():
    # a field a run does not use (None) is left out; the data split is one spec carrying its own parameter
    iid = (("heterogeneity", "iid"), ("momentum_at", None), ("nb_real_byz", 1))
    skewed = (("heterogeneity", "dirichlet(alpha=0.5)"), ("momentum_at", None), ("nb_real_byz", 1))
    assert describe(iid) == "f=1, heterogeneity=iid"
    assert describe(skewed) == "f=1, heterogeneity=dirichlet(alpha=0.5)"
    assert describe(()) == "all runs"
    assert slugs([iid, skewed]) == ["-f=1_heterogeneity=iid", "-f=1_heterogeneity=dirichlet_alpha=0.5"]
    assert slugs([()]) == [""]


def test_runs_named_by_id_are_the_only_ones_read(tmp_path, fake_run):
    fake_run(tmp_path, [0.3, 0.6], aggregator="median", attack="none")
    fake_run(tmp_path, [0.2, 0.4], aggregator="krum", attack="none")
    (tmp_path / "unfinished-run").mkdir()
    (tmp_path / "unfinished-run" / "checkpoint.pt").write_bytes(b"")
    median = Config(dataset="digits", nb_workers=7, nb_decl_byz=1, aggregator="median", attack="none").run_id()
    design = load(tmp_path, runs={median})
    assert design.runs == 1 and design.unfinished == 0 and [g.aggregator for g in design.groups] == ["median"]
    assert load(tmp_path).runs == 2 and load(tmp_path).unfinished == 1
    write_report(tmp_path, diagnostics=False, formats=("png",), runs={median})
    assert "krum" not in (tmp_path / "table.csv").read_text()
    with pytest.raises(UserException, match="No finished run .* among the 1 runs asked for"):
        load(tmp_path, runs={"not-a-run"})
