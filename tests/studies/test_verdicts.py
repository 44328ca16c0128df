"""Verdicts with their uncertainty: Estimate, decide, within, combine, Tally and the seed-by-seed combinations of
Results, each against numbers worked out by hand."""
import math

import numpy as np
import pytest

from simulator.studies.study import (FAILS, HOLDS, NOT_COMPARABLE, UNDECIDED, Estimate, Results, Tally, combine,
                                     decide, within)

T2 = 4.302652729749464  # Student t_{0.975} with 2 degrees of freedom (3 seeds)


def test_an_estimate_of_three_seeds_has_the_student_half_width():
    e = Estimate.of([0.1, 0.2, 0.3])  # sample sd 0.1
    assert e.mean == pytest.approx(0.2) and e.half == pytest.approx(T2 * 0.1 / math.sqrt(3))
    one = Estimate.of([0.4])
    assert one.mean == 0.4 and math.isnan(one.half) and one.text() == "40.0"
    assert math.isnan(Estimate.of([]).mean)


def test_a_difference_of_independent_estimates_adds_half_widths_in_quadrature():
    d = Estimate(0.5, 0.03) - Estimate(0.3, 0.04)
    assert d.mean == pytest.approx(0.2) and d.half == pytest.approx(0.05)
    assert d.text() == "20.0 ± 5.0" and d.text(scale=1, digits=2) == "0.20 ± 0.05"
    assert Estimate(-0.0004, 0.01).text() == "0.0 ± 1.0" and Estimate(-0.004, 0.01).text() == "-0.4 ± 1.0"


@pytest.mark.parametrize("estimate, bar, above, status", [
    (Estimate(0.0505, 0.022), 0.05, False, UNDECIDED),  # krum's gap at f = 4: the bar lies in the interval
    (Estimate(0.0505, 0.022), 0.05, True, UNDECIDED),  # whichever side is asked for
    (Estimate(0.02, 0.02), 0.05, False, HOLDS),  # 0 to 4 points: below 5 beyond doubt
    (Estimate(0.08, 0.02), 0.05, False, FAILS),  # 6 to 10 points
    (Estimate(0.08, 0.02), 0.05, True, HOLDS),
    (Estimate(0.75, 0.25), 0.5, False, UNDECIDED),  # the bar on the interval's edge counts as inside
    (Estimate(0.06, math.nan), 0.05, True, HOLDS),  # one seed: the mean alone decides
    (Estimate(math.nan, math.nan), 0.05, True, NOT_COMPARABLE),
])
def test_decide_is_undecided_exactly_when_the_bar_lies_in_the_interval(estimate, bar, above, status):
    assert decide(estimate, bar, above) == status


@pytest.mark.parametrize("estimate, status", [
    (Estimate(0.01, 0.02), HOLDS),  # -1 to 3 points, within 5 either way
    (Estimate(-0.01, 0.02), HOLDS),
    (Estimate(0.04, 0.02), UNDECIDED),  # 2 to 6 points
    (Estimate(-0.09, 0.02), FAILS),  # -11 to -7
    (Estimate(0.09, 0.02), FAILS),
])
def test_within_is_a_two_sided_closeness(estimate, status):
    assert within(estimate, 0.05) == status


@pytest.mark.parametrize("statuses, status", [
    ([HOLDS, HOLDS], HOLDS), ([HOLDS, UNDECIDED], UNDECIDED), ([UNDECIDED, FAILS, HOLDS], FAILS),
    ([HOLDS, NOT_COMPARABLE], NOT_COMPARABLE), ([], NOT_COMPARABLE),
])
def test_combine_needs_every_part(statuses, status):
    assert combine(statuses) == status


def test_a_tally_counts_the_undecided_cases_against_then_for_the_claim():
    cases = [(HOLDS, HOLDS), (HOLDS, UNDECIDED), (HOLDS, FAILS),  # applies: met, open, missed
             (UNDECIDED, HOLDS), (UNDECIDED, FAILS), (UNDECIDED, UNDECIDED),  # may apply
             (FAILS, HOLDS), (NOT_COMPARABLE, HOLDS)]  # does not apply; not run
    tally = Tally.of(cases)
    # worst: met only (H, H); counted: the 3 that apply, and the may-apply cases that could be misses (2)
    # best: met (H, H), (H, U), (U, H), (U, U); counted: the 3 that apply, and the may-apply cases that could meet (2)
    assert (tally.worst, tally.best, tally.missing) == ((1, 5), (4, 5), 1)
    assert tally.text() == "1/5 (worst) to 4/5 (best) (1 not run)"
    assert tally.decide(0.2) == HOLDS and tally.decide(0.2, strictly=True) == UNDECIDED
    assert tally.decide(0.6) == UNDECIDED and tally.decide(0.9) == FAILS
    plain = Tally.count([HOLDS, HOLDS, HOLDS, UNDECIDED, FAILS])
    assert plain.text() == "3/5 (worst) to 4/5 (best)" and plain.decide(0.6) == HOLDS and plain.decide(0.8) == UNDECIDED
    assert Tally.of([(FAILS, HOLDS)]).decide(0.5) == NOT_COMPARABLE  # nothing it applies to


def test_groups_with_the_same_seeds_are_combined_seed_by_seed(group):
    a, b = [0.80, 0.84, 0.82], [0.70, 0.74, 0.72]  # each seed 10 points apart
    results = Results([group("krum", "none", a), group("krum", "alie", b)], "final")
    paired = results.difference({"attack": "none"}, {"attack": "alie"})
    assert paired.mean == pytest.approx(0.10) and paired.half == pytest.approx(0.0, abs=1e-12)
    apart = Results([group("krum", "none", a), group("krum", "alie", b, seeds=(4, 5, 6))], "final")
    quadrature = apart.difference({"attack": "none"}, {"attack": "alie"})
    assert quadrature.mean == pytest.approx(0.10)
    assert quadrature.half == pytest.approx(math.hypot(T2 * 0.02 / math.sqrt(3), T2 * 0.02 / math.sqrt(3)))
    weighted = results.combination([(1.0, {"attack": "none"}), (-0.5, {"attack": "alie"})])
    assert weighted.mean == pytest.approx(np.mean(a) - 0.5 * np.mean(b))
    assert math.isnan(results.difference({"attack": "none"}, {"attack": "ipm"}).mean)  # a group missing


def test_results_read_any_accuracy_or_a_function_of_the_curves(group):
    results = Results([group("krum", "none", [[0.2, 0.9, 0.5], [0.4, 0.7, 0.6]])], "best")
    assert results.estimate(aggregator="krum").mean == pytest.approx(0.8)
    assert results.under("final").estimate(aggregator="krum").mean == pytest.approx(0.55)
    assert results.seed_values(lambda acc: acc[:, 0], aggregator="krum") == {1: 0.2, 2: 0.4}
    assert results.estimate(lambda acc: acc[:, 0], aggregator="krum").mean == pytest.approx(0.3)
    assert results.seed_values(aggregator="median") == {}


def test_results_read_the_attack_success_rate_and_robust_accuracy_with_their_intervals(group):
    badnets = group("average", "badnets", [[0.80, 0.82], [0.78, 0.80], [0.79, 0.81]],
                    asr=[[0.5, 0.9], [0.6, 0.7], [0.7, 0.8]], robust_accuracy=[[0.4, 0.1], [0.3, 0.2], [0.2, 0.1]],
                    asr_after={0: [0.9, 0.7, 0.8], 5: [0.6, 0.5, 0.4]})
    flame = group("flame", "badnets", [[0.80, 0.81], [0.79, 0.80], [0.78, 0.79]],
                  asr=[[0.1, 0.2], [0.1, 0.1], [0.2, 0.3]], robust_accuracy=[[0.8, 0.7], [0.8, 0.8], [0.7, 0.6]])
    free = group("average", "none", [0.83, 0.81, 0.82])
    results = Results([badnets, flame, free], "final")
    final = results.estimate(of="asr", aggregator="average", attack="badnets")  # 0.9, 0.7, 0.8
    assert final.mean == pytest.approx(0.8) and final.half == pytest.approx(T2 * 0.1 / math.sqrt(3))
    assert results.under("best").estimate(of="asr", aggregator="average", attack="badnets").mean == pytest.approx(0.8)
    assert results.estimate(of="robust_accuracy", aggregator="flame").mean == pytest.approx(0.7)
    assert results.estimate(aggregator="flame").mean == pytest.approx(0.8)  # the clean accuracy, as before
    assert results.seed_values(lambda c: c[:, 0], of="asr", aggregator="flame") == {1: 0.1, 2: 0.1, 3: 0.2}
    lower = results.difference({"aggregator": "average", "attack": "badnets"}, {"aggregator": "flame"},
                               of="asr")  # 0.7, 0.6, 0.5 seed by seed
    assert lower.mean == pytest.approx(0.6) and lower.half == pytest.approx(T2 * 0.1 / math.sqrt(3))
    assert results.curve(of="asr", aggregator="flame") == ([0, 1], pytest.approx([0.4 / 3, 0.2]))
    lasting = results.asr_after(5, aggregator="average", attack="badnets")
    assert lasting.mean == pytest.approx(0.5) and lasting.half == pytest.approx(T2 * 0.1 / math.sqrt(3))
    # no ASR without a targeted attack, no durability where the schedule ran to the end, or at a k not evaluated
    assert math.isnan(results.estimate(of="asr", attack="none").mean)
    assert results.seed_values(of="asr", attack="none") == {} and results.curve(of="asr", attack="none") == ([], [])
    assert math.isnan(results.difference({"aggregator": "average", "attack": "badnets"}, {"attack": "none"},
                                         of="asr").mean)
    assert math.isnan(results.asr_after(0, aggregator="flame").mean)
    assert math.isnan(results.asr_after(3, aggregator="average", attack="badnets").mean)
    for read in (results.estimate, results.seed_values):  # a misspelt curve is an error, even where nothing matches
        with pytest.raises(ValueError, match="of='loss'"):
            read(of="loss", aggregator="krum")


def test_results_find_a_rule_as_run_identities_spell_it(group):
    """A run's identity leaves out the parameters a rule gained since, at their default: a lookup reads it so."""
    row = group("bulyan", "none", 0.8)
    row.group.identity["aggregator"] = "bulyan"  # as the committed records of the alie study spell it
    assert Results([row], "best").value(aggregator="bulyan") == 0.8
