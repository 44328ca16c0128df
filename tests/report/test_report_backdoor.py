"""The report under targeted attacks: accuracy and ASR side by side, the worst case is the highest ASR, the best
rule the lowest, durability where a schedule stopped; reports without targeted attacks keep their files."""
import csv

import pytest

from simulator import Config
from simulator.core.metrics import EVAL_COLUMNS, METRIC_COLUMNS
from simulator.core.run import BACKDOOR_COLUMNS
from simulator.core.store import CONFIG, EVALS, METRICS, SUMMARY, RunFolder
from simulator.report import load, summarise, worst_cases, write_report
from simulator.report.stats import worst

BASE = {"dataset": "digits", "nb_workers": 7, "nb_decl_byz": 1}


def _targeted_run(config, accuracy, asr, after=None):
    """A finished run folder of a targeted attack: evaluations every 10 steps with these accuracies and ASRs."""
    folder = RunFolder(config.folder())
    rows = [{"step": 10 * i, "accuracy": a, "test_loss": 1.0, "val_accuracy": "", "val_loss": "", "asr": r,
             "robust_accuracy": 1 - r} for i, (a, r) in enumerate(zip(accuracy, asr))]
    folder.write_csv(EVALS, (*EVAL_COLUMNS, *BACKDOOR_COLUMNS), rows)
    steps = rows[-1]["step"]
    folder.write_csv(METRICS, METRIC_COLUMNS, [{**dict.fromkeys(METRIC_COLUMNS, 0.0), "step": t} for t in range(steps)])
    folder.write_json(CONFIG, config.to_dict())
    folder.write_json(SUMMARY, {"steps": steps, "final_accuracy": accuracy[-1], "final_asr": asr[-1],
                                **({"asr_after_attack": after} if after else {})})


@pytest.fixture
def grid(tmp_path, finished_run):
    """median and krum under none, alie, badnets and dba (a single shot of dba at step 0, then 20 honest steps)."""
    asr = {("median", "badnets"): 0.9, ("median", "dba(end=1)"): 0.3,
           ("krum", "badnets"): 0.2, ("krum", "dba(end=1)"): 0.4}
    for aggregator in ("median", "krum"):
        for attack in ("none", "alie"):
            finished_run(Config(**BASE, aggregator=aggregator, attack=attack, output=str(tmp_path)), [0.1, 0.8, 0.9])
        for attack in ("badnets", "dba(end=1)"):
            final = asr[aggregator, attack]
            after = {"9": 0.95, "19": final} if attack.startswith("dba") else None
            _targeted_run(Config(**BASE, aggregator=aggregator, attack=attack, output=str(tmp_path)),
                          [0.1, 0.7, 0.85], [0.05, 0.95, final], after)
    write_report(tmp_path, diagnostics=False, formats=("png",))
    return tmp_path


def test_the_worst_case_of_an_asr_is_its_highest_and_the_best_rule_has_the_lowest(grid):
    summaries = summarise(load(grid))
    cases = {w.aggregator: w for w in worst_cases(summaries, "final", quantity="asr")}
    assert (cases["median"].value, cases["median"].attack) == (0.9, "badnets")
    assert (cases["krum"].value, cases["krum"].attack) == (0.4, "dba(end=1)")
    with open(grid / "worst_asr.csv") as handle:
        rows = {r["aggregator"]: r for r in csv.DictReader(handle)}
    assert rows["krum"]["best_rule"] == "True" and rows["median"]["best_rule"] == "False"  # 0.4 < 0.9
    accuracy = {w.aggregator: w for w in worst_cases(summaries, "final")}  # clean accuracy: still the lowest
    assert accuracy["median"].value == pytest.approx(0.85)


def test_worst_takes_the_lowest_value_or_with_highest_the_highest():
    values = {"none": 0.0, "a": 0.2, "b": 0.7, "c": float("nan")}
    assert worst(values) == (0.2, "a") and worst(values, highest=True) == (0.7, "b")


def test_the_page_shows_accuracy_and_asr_side_by_side_and_the_durability(grid):
    page = (grid / "report.md").read_text()
    section = page.split("## Backdoor: clean accuracy and attack success rate", 1)[1].split("\n## ", 1)[0]
    header = "| aggregator | badnets: accuracy | badnets: ASR | dba(end=1): accuracy | dba(end=1): ASR |"
    assert header in section
    assert "| krum | 0.850 (1) | 0.200 (1) | 0.850 (1) | 0.400 (1) |" in section
    assert "| median | 0.900 | badnets | 0.850 |" in section  # worst ASR, its attack, the accuracy under it
    assert "Best rule against the backdoors: **krum** (worst ASR 0.400)." in section
    assert "| krum | dba(end=1) | 0.950 | 0.400 |" in section  # k = 9 and k = 19 after its one shot
    assert "badnets | 0.9" not in section.split("k steps after", 1)[1]  # no schedule end: no durability row
    with open(grid / "table.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["asr_final_mean"] for r in rows if r["attack"] in ("none", "alie")} == {""}
    assert {float(r["robust_accuracy_final_mean"]) for r in rows if r["attack"] == "badnets"} == {0.1, 0.8}


def test_a_report_without_targeted_attacks_has_no_backdoor_section_column_or_file(tmp_path, finished_run):
    for attack in ("none", "alie"):
        finished_run(Config(**BASE, aggregator="median", attack=attack, output=str(tmp_path)), [0.1, 0.9])
    written = write_report(tmp_path, diagnostics=False, formats=("png",))
    assert not (tmp_path / "worst_asr.csv").exists() and all(p.name != "worst_asr.csv" for p in written)
    assert "Backdoor" not in (tmp_path / "report.md").read_text()
    with open(tmp_path / "table.csv") as handle:
        assert not any("asr" in column or "robust" in column for column in next(csv.reader(handle)))
