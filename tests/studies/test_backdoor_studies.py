"""The backdoor studies (replacement, sun2019, backdoors): registered with their grids on the dataset they are made
for, each claim on hand-made tables of three seeds (holding, failing, undecided, not comparable), and each --quick
variant end to end (slow)."""
import numpy as np
import pytest

from experiments import datasets
from simulator.grid import load_grids
from simulator.studies import check_claims, get, names, reproduce
from simulator.studies.papers import backdoors as bd
from simulator.studies.papers import replacement as rp
from simulator.studies.papers import sun2019 as sn
from simulator.studies.pipeline import choose_dataset
from simulator.studies.study import FAILS, HOLDS, NOT_COMPARABLE, UNDECIDED, Results

STUDIES = ("replacement", "sun2019", "backdoors")
SEEDS = np.array([-0.01, 0.0, 0.01])  # each seed's offset: a group's seeds spread by 2 points


def around(value, spread=SEEDS):
    """Three seeds at ``value`` plus the offsets, one evaluation each (a list: the seeds' values as they are)."""
    return list(value) if isinstance(value, list) else list(value + spread)


def statuses(name, results):
    return [claim.check(results).status for claim in get(name).claims]


@pytest.mark.parametrize("name", STUDIES)
def test_each_study_is_registered_with_full_and_quick_grids_on_fashion_mnist(name, monkeypatch):
    assert name in names()
    study = get(name)
    assert study.notes_file.exists() and all(claim.source for claim in study.claims)
    grids = load_grids(study.grid_file)
    assert set(grids) == {"full", "quick"} and len(grids["quick"].configs) < len(grids["full"].configs)
    assert {c.seed for c in grids["quick"].configs} == {1} and len({c.seed for c in grids["full"].configs}) >= 3
    assert all(c.model == "simples-full" for g in grids.values() for c in g.configs)
    monkeypatch.setattr(datasets, "load_tensors", lambda *args: None)  # whatever is found locally
    dataset, why = choose_dataset(study, None, None)
    assert dataset == "fashionmnist" and study.paper_dataset in why and study.paper_dataset != "fashionmnist"
    assert choose_dataset(study, "digits", None) == ("digits", "asked for with --dataset")


# replacement: curves over steps 0..111, the shot at step 100, so the evaluation right after it is step 101

def shot_group(group, attack, accuracy, asr_after_shot=None, lasting=None, dip=0.0):
    """Three seeds evaluated at steps 0..111: clean accuracy ``accuracy`` (``dip`` lower at step 101), and under a
    targeted attack the ASR ``asr_after_shot`` at step 101 with durability {0: at step 101, 10: ``lasting``}."""
    steps = rp.SHOT + rp.LATER + 2
    clean = np.tile(np.array(around(accuracy))[:, None], steps)
    clean[:, rp.SHOT + 1] -= np.asarray(dip)  # a number, or one value a seed
    if asr_after_shot is None:
        return group("average", attack, clean)
    asr = np.full((3, steps), 0.05)
    asr[:, rp.SHOT + 1] = around(asr_after_shot)
    return group("average", attack, clean, asr=asr, robust_accuracy=1 - asr,
                 asr_after={0: around(asr_after_shot), rp.LATER: around(lasting)})


def replacement_table(group, scaled=0.98, lasting=0.70, unscaled=0.06, dip=0.01):
    return Results([shot_group(group, rp.FREE, 0.86),
                    shot_group(group, rp.SCALED, 0.86, scaled, lasting, dip),
                    shot_group(group, rp.UNSCALED, 0.86, unscaled, unscaled)], "final")


def test_replacement_claims_on_a_hand_made_table(group):
    assert statuses("replacement", replacement_table(group)) == [HOLDS] * 4
    # the shot misses 90%, is gone 10 rounds on, the unscaled shot takes hold, the replaced model loses 5 points
    assert statuses("replacement", replacement_table(group, 0.70, 0.30, 0.40, 0.05)) == [FAILS] * 4
    # each bar inside its interval: 0.90 +- 0.025, 0.50, 0.20 +- 0.025 (and the gap 0.70 > 0.50), 3 +- 2.5 points
    wide = replacement_table(group, 0.90, 0.50, 0.20, [0.02, 0.03, 0.04])
    assert statuses("replacement", wide) == [UNDECIDED] * 4
    verdict = get("replacement").claims[2].check(replacement_table(group))
    assert "92.0 ± 0.0 points" in verdict.ours  # the scaled minus the unscaled shot, seed by seed


def test_replacement_claims_are_not_comparable_without_their_runs(group):
    free_only = Results([shot_group(group, rp.FREE, 0.86)], "final")
    assert statuses("replacement", free_only) == [NOT_COMPARABLE] * 4


# sun2019: the undefended average, norm clipping and weak DP, without and under the boosted attack

def sun_table(group, undefended=0.99, clipped=0.60, noisy=0.40, accuracy=(0.86, 0.855, 0.85)):
    free, clip, dp = accuracy
    return Results([group("average", "none", around(0.86)),
                    group("average", sn.ATTACK, around(0.855), asr=around(undefended), robust_accuracy=around(0.0)),
                    group(sn.CLIP, sn.ATTACK, around(clip), asr=around(clipped), robust_accuracy=around(0.3)),
                    group(sn.WEAK_DP, sn.ATTACK, around(dp), asr=around(noisy), robust_accuracy=around(0.5))],
                   "final")


def test_sun2019_claims_on_a_hand_made_table(group):
    assert statuses("sun2019", sun_table(group)) == [HOLDS] * 4
    # a weak backdoor, clipping that removes little, noise that adds to it, defences that cost 5 points
    assert statuses("sun2019", sun_table(group, 0.60, 0.55, 0.70, (0.86, 0.81, 0.80))) == [FAILS] * 4
    # a 90% ASR, a 20-point drop, no difference with noise (interval 0), a 3-point loss: each bar in its interval
    wider = np.array([-0.02, 0.0, 0.02])  # seeds spread by 4 points: their differences with the others' spread by 2
    undecided = sun_table(group, around(0.90, wider), 0.70, 0.70, (0.86, around(0.83, wider), around(0.83, wider)))
    assert statuses("sun2019", undecided) == [UNDECIDED, UNDECIDED, UNDECIDED, UNDECIDED]
    assert statuses("sun2019", Results([], "final")) == [NOT_COMPARABLE] * 4


# backdoors: eight rules x the four backdoors and Fang's two attacks

def matrix(group, asr=None, fang=None, free=0.82):
    """``asr``: {(rule, attack): ASR} overriding 0.95 for the average and foolsgold, 0.05 elsewhere; ``fang``:
    {(rule, attack): clean accuracy} overriding 0.81."""
    rows = [group(rule, "none", around(free)) for rule in bd.RULES]
    for rule in bd.RULES:
        for attack in bd.BACKDOORS:
            value = (asr or {}).get((rule, attack), 0.95 if rule in ("average", "foolsgold") else 0.05)
            asr_ = np.array(around(value))
            rows.append(group(rule, attack, around(0.8), asr=asr_, robust_accuracy=1 - asr_))
        rows += [group(rule, attack, around((fang or {}).get((rule, attack), 0.81))) for attack in bd.UNTARGETED]
    return Results(rows, "final")


def test_any_of_holds_when_one_part_holds():
    assert bd.any_of([FAILS, HOLDS, UNDECIDED]) == HOLDS
    assert bd.any_of([FAILS, UNDECIDED]) == UNDECIDED and bd.any_of([FAILS, FAILS]) == FAILS
    assert bd.any_of([NOT_COMPARABLE, FAILS]) == FAILS and bd.any_of([]) == NOT_COMPARABLE


def test_backdoor_matrix_claims_on_a_hand_made_table(group):
    # the average and FoolsGold fall to every backdoor, the others to none; FoolsGold ties the average
    assert statuses("backdoors", matrix(group)) == [HOLDS, FAILS, HOLDS, UNDECIDED, HOLDS, HOLDS]
    # every rule lets DBA through, the average keeps Neurotoxin out, FLAME loses 10 points to fang-trim
    through = {(rule, "dba"): 0.60 for rule in bd.RULES} | {("average", "neurotoxin"): 0.10}
    through |= {("foolsgold", "model-replacement"): 0.50}
    assert statuses("backdoors", matrix(group, through, {("flame", "fang-trim"): 0.72})) == [
        FAILS, HOLDS, FAILS, HOLDS, HOLDS, FAILS]
    # bars inside their intervals: 0.20 for FLTrust under BadNets, FLAME 0.50 +- 0.025 below the average there
    edge = {("fltrust", "badnets"): 0.20, ("average", "badnets"): around(0.55, np.array([-0.02, 0.0, 0.02]))}
    assert statuses("backdoors", matrix(group, edge))[2:5] == [UNDECIDED, UNDECIDED, UNDECIDED]
    assert statuses("backdoors", Results([], "final")) == [NOT_COMPARABLE] * 6


@pytest.mark.slow
@pytest.mark.parametrize("name", STUDIES)
def test_the_quick_variant_runs_and_checks_its_claims(name, tmp_path):
    done = reproduce(name, quick=True, jobs=2, output=tmp_path / "runs", publish=tmp_path / "published",
                     records=tmp_path / "published" / "runs", progress=False)
    assert done.outcome.failed == 0 and done.dataset == "fashionmnist"
    assert len(done.verdicts) == len(get(name).claims) and NOT_COMPARABLE not in {v.status for v in done.verdicts
                                                                                   if name != "backdoors"}
    assert check_claims(get(name), tmp_path / "published" / "runs") == done.verdicts
    report = (tmp_path / "published" / "report.md").read_text()
    assert "## Backdoor: clean accuracy and attack success rate" in report
