"""The mixing study (Allouah et al., AISTATS 2023): registered with its grids, and each claim on hand-made tables
of three seeds, holding, failing, undecided and not comparable."""
import pytest

import aggregators
from simulator.cli.main import main
from simulator.grid import load_grids
from simulator.studies import get, names
from simulator.studies.papers import mixing as m
from simulator.studies.study import FAILS, HOLDS, NOT_COMPARABLE, UNDECIDED, Results

SEEDS = [-0.01, 0.0, 0.01]  # each seed's offset: the seeds of one group spread by 2 points


def cells(group, aggregator, heterogeneity, worst, others=0.80, worst_attack="SF", spread=SEEDS):
    """A group per attack: ``worst`` (a number, or one value a seed) under ``worst_attack``, ``others`` elsewhere."""
    def values(level):
        return level if isinstance(level, list) else [level + d for d in spread]
    return [group(aggregator, spec, values(worst if name == worst_attack else others), heterogeneity=heterogeneity)
            for name, spec in m.ATTACKS.items()]


def table(group, rules=tuple(m.RULES.values()), alone=0.40, nnm=0.75, bucketing=0.55, iid_alone=0.82, iid_nnm=0.83,
          free=0.85, override=None):
    """Every cell of the full grid: ``override`` maps (aggregator, heterogeneity) to the worst case of that pair."""
    def worst(aggregator, heterogeneity, default):
        return (override or {}).get((aggregator, heterogeneity), default)

    rows = [group("average", "none", [free + d for d in SEEDS], heterogeneity=h) for h in (m.SORTED, m.IID)]
    for rule in rules:
        rows += cells(group, rule, m.SORTED, worst(rule, m.SORTED, alone))
        rows += cells(group, m.mixed(rule), m.SORTED, worst(m.mixed(rule), m.SORTED, nnm), worst_attack="ALIE")
        rows += cells(group, rule, m.IID, worst(rule, m.IID, iid_alone), others=0.84)
        rows += cells(group, m.mixed(rule), m.IID, worst(m.mixed(rule), m.IID, iid_nnm), others=0.84)
        if rule != "krum":  # bucketing feeds krum too few vectors at n = 15, f = 3
            rows += cells(group, m.bucketed(rule), m.SORTED, worst(m.bucketed(rule), m.SORTED, bucketing))
    return Results(rows, "best")


def statuses(results):
    return [claim.check(results).status for claim in get("mixing").claims]


def test_the_study_is_registered_and_its_grids_parse(capsys):
    assert "mixing" in names()
    study = get("mixing")
    assert study.metric == "best" and len(study.claims) == 4 and all(c.source for c in study.claims)
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    assert f"mixing: {study.citation}" in out and all(claim.text in out for claim in study.claims)
    grids = load_grids(study.grid_file)
    full, quick = grids["full"].configs, grids["quick"].configs
    assert set(grids) == {"full", "quick"} and len(quick) < len(full) and len(full) == 291
    assert {c.seed for c in full} == {0, 1, 2} and {c.seed for c in quick} == {0}
    for rule in m.RULES.values():
        for heterogeneity in (m.SORTED, m.IID):
            for aggregator in (rule, m.mixed(rule)):
                ran = {c.attack for c in full if c.aggregator == aggregator and c.heterogeneity == heterogeneity}
                assert ran == set(m.ATTACKS.values()), (aggregator, heterogeneity)
    assert {aggregators.get(c.aggregator).canonical for c in full if c.aggregator.startswith("bucketing")} == {
        aggregators.get(m.bucketed(r)).canonical for r in ("trmean", "median", "geomed")}
    free = [c for c in full if c.attack == "none"]
    assert {(c.aggregator, c.nb_workers, c.nb_decl_byz) for c in free} == {("average", 12, 0)} and len(free) == 6
    assert study.notes_file.exists()


def test_every_claim_holds_on_a_table_where_nnm_fixes_the_rules(group):
    results = table(group)
    assert statuses(results) == [HOLDS] * 4
    recovered = get("mixing").claims[1].check(results)
    assert "CWTM: alone 40.0 ± 2.5 under SF, with NNM 75.0 ± 2.5 under ALIE, gain 35.0" in recovered.ours
    assert recovered.paper == m.NO_NUMBERS


def test_each_claim_fails_where_its_rule_misbehaves(group):
    failing = table(group, override={
        ("median", m.SORTED): 0.80,  # median alone keeps its accuracy under label-sorted data
        ("nnm>geomed", m.SORTED): 0.30,  # NNM makes GM worse, and worse than bucketing
        ("nnm>krum", m.IID): 0.70})  # NNM costs krum 12 points on iid data
    assert statuses(failing) == [FAILS] * 4


def test_a_gain_within_its_interval_is_undecided(group):
    # NNM moves CWTM's worst case by -2, +1, +4 points seed by seed: +1 ± 7.5, zero inside the interval
    undecided = table(group, override={("nnm>trmean", m.SORTED): [0.38, 0.41, 0.44],
                                       ("trmean", m.SORTED): [0.40] * 3})
    verdict = m.nnm_recovers(undecided)
    assert verdict.status == UNDECIDED and "within its 95% interval of zero" in verdict.reason
    assert "gain 1.0 ± 7.5" in verdict.ours
    # on iid data a 3-point move with a 2-point spread straddles the 3-point bar
    straddling = table(group, override={("nnm>median", m.IID): [0.83, 0.85, 0.87], ("median", m.IID): [0.82] * 3})
    assert m.nnm_changes_little_on_iid(straddling).status == UNDECIDED


def test_worst_cases_are_compared_seed_by_seed(group):
    """Seeds far apart but shifted alike: the gain's interval is that of the per-seed gains, here zero wide."""
    shifted = table(group, override={("trmean", m.SORTED): [0.20, 0.40, 0.60],
                                     ("nnm>trmean", m.SORTED): [0.22, 0.42, 0.62]})
    verdict = m.nnm_recovers(shifted)
    assert verdict.status == HOLDS and "gain 2.0 ± 0.0" in verdict.ours


def test_the_worst_case_is_the_attack_with_the_lowest_mean(group):
    results = Results(cells(group, "trmean", m.SORTED, 0.30, worst_attack="LF"), "best")
    attack, where = m.worst(results, "trmean", m.SORTED)
    assert attack == "LF" and where == {"aggregator": "trmean", "attack": "labelflip", "heterogeneity": m.SORTED}
    assert m.worst(results, "median", m.SORTED) == ("", None)


def test_claims_use_the_rules_that_ran_and_are_not_comparable_without_runs(group):
    partial = table(group, rules=("trmean", "median"))  # the quick grid's two rules
    verdicts = [claim.check(partial) for claim in get("mixing").claims]
    assert [v.status for v in verdicts] == [HOLDS] * 4
    assert "CWTM" in verdicts[1].ours and "Krum" not in verdicts[1].ours
    assert statuses(Results([], "best")) == [NOT_COMPARABLE] * 4
    no_bucketing = Results([s for s in partial.summaries if "bucketing" not in s.group.aggregator], "best")
    assert statuses(no_bucketing)[2] == NOT_COMPARABLE
    no_reference = Results([s for s in partial.summaries if s.group.attack != "none"], "best")
    assert statuses(no_reference)[0] == NOT_COMPARABLE


@pytest.mark.parametrize("metric", ["final", "best"])
def test_the_claims_read_the_accuracy_they_are_given(group, metric):
    curves = [[0.9, 0.3]] * 3  # best 90%, final 30%
    rows = [group("average", "none", [[0.9, 0.9]] * 3, heterogeneity=m.SORTED),
            *[group("trmean", spec, curves, heterogeneity=m.SORTED) for spec in m.ATTACKS.values()]]
    verdict = m.heterogeneity_breaks_the_rules(Results(rows, metric))
    assert verdict.status == (FAILS if metric == "best" else HOLDS)  # a late collapse shows on the final accuracy
