"""The decentralised and the privacy studies (clippedgossip, guerraoui2021): registered with their grids on
Fashion-MNIST, each claim on hand-made tables of three seeds (holding, failing, not comparable), the result
table's reads they need (the nodes' accuracies, topology and privacy specs in any spelling), and each --quick
variant end to end (slow)."""
import numpy as np
import pytest

from experiments import datasets
from simulator.grid import load_grids
from simulator.studies import check_claims, get, reproduce
from simulator.studies.papers import clippedgossip as cg
from simulator.studies.papers import guerraoui2021 as gu
from simulator.studies.pipeline import choose_dataset
from simulator.studies.study import FAILS, HOLDS, NOT_COMPARABLE, Results

SEEDS = np.array([-0.01, 0.0, 0.01])


def around(value):
    return list(value + SEEDS)


def cell(group, where, accuracy, **extra):
    """A hand-made group at the fields of a study's cell (``where`` names its aggregator and attack)."""
    fields = dict(where)
    return group(fields.pop("aggregator"), fields.pop("attack"), around(accuracy), **extra, **fields)


def statuses(name, results):
    return [claim.check(results).status for claim in get(name).claims]


@pytest.mark.parametrize("name, model, runs", [("clippedgossip", "simples-full", 3 * (8 + 25 + 12 + 6)),
                                               ("guerraoui2021", "simples-logit", 5 * 6 * 4 * 3)])
def test_each_study_is_registered_with_full_and_quick_grids_on_fashion_mnist(name, model, runs, monkeypatch):
    study = get(name)
    assert study.notes_file.exists() and all(claim.source for claim in study.claims)
    grids = load_grids(study.grid_file)
    assert set(grids) == {"full", "quick"} and len(grids["full"].configs) == runs  # refused cells skipped
    assert {c.seed for c in grids["quick"].configs} == {1} and len({c.seed for c in grids["full"].configs}) >= 3
    assert all(c.model == model for g in grids.values() for c in g.configs)
    monkeypatch.setattr(datasets, "load_tensors", lambda *args: None)
    assert choose_dataset(study, None, None)[0] == "fashionmnist"


# clippedgossip: the dumbbell (Fig. 4), the Byzantine bridge (Fig. 5) and the rings with leaves (Fig. 6)

def gossip_table(group, clipped_sorted=0.80, robust_sorted=0.70, worst=(0.65, 0.45), dissensus_far=0.20,
                 ring_clipped=0.80, ring_gm_alie=0.10, ring_gossip=0.10):
    rows = []
    for h, accuracies in (("iid", {cg.GOSSIP: 0.85, cg.CLIPPED: 0.85, cg.GM: 0.84, cg.MEDIAN: 0.84}),
                          (cg.SORTED, {cg.GOSSIP: 0.80, cg.CLIPPED: clipped_sorted, cg.GM: robust_sorted,
                                       cg.MEDIAN: robust_sorted})):
        for rule, accuracy in accuracies.items():
            nodes = {"mean_node_accuracy": around(accuracy), "worst_node_accuracy":
                     around({cg.CLIPPED: worst[0], cg.GM: worst[1]}.get(rule, 0.5))}
            rows.append(cell(group, cg._dumbbell(rule, h), accuracy, nodes=nodes))
    for delta in cg.DELTAS:
        for name, attack in cg.BRIDGE_ATTACKS.items():
            accuracy = 0.70
            if name == "dissensus":
                accuracy = {0: 0.70, 1: dissensus_far}.get(delta, 0.5)
            rows.append(cell(group, cg._bridge(delta, attack), accuracy))
    for ring in cg.RINGS:
        for name, attack in cg.RING_ATTACKS.items():
            cells = {cg.RING_CLIPPED: ring_clipped, cg.GOSSIP: ring_gossip}
            if ring != cg.MAJORITY:  # byzsim refuses GM and TM where node 0 has a Byzantine majority
                cells |= {cg.GM: ring_gm_alie if name != "dissensus" else 0.8,
                          cg.TM: {"ALIE": ring_gm_alie, "IPM": 0.7}.get(name, 0.8)}
            rows += [cell(group, cg._ring(ring, rule, attack), a) for rule, a in cells.items()]
    return Results(rows, "final")


def test_clippedgossip_claims_on_a_hand_made_table(group):
    assert statuses("clippedgossip", gossip_table(group)) == [HOLDS] * 7
    failing = gossip_table(group, 0.75, 0.80, (0.45, 0.45), 0.70, 0.50, 0.60, 0.60)
    assert statuses("clippedgossip", failing) == [FAILS] * 7
    assert statuses("clippedgossip", Results([], "final")) == [NOT_COMPARABLE] * 7


def test_clippedgossip_reads_the_worst_node_and_compares_every_logged_cell(group):
    table = gossip_table(group)
    verdict = get("clippedgossip").claims[2].check(table)
    assert "20.0 ± 0.0 points" in verdict.ours and "ClippedGossip 65.0 ± 2.5%" in verdict.ours
    rows = get("clippedgossip").comparison(table)
    assert len(rows) == 8 + 4 + 25 + 18 + 6
    refused = [r for r in rows if r["setting"].endswith(cg.MAJORITY) and r["rule"] in (cg.GM, cg.TM)]
    assert len(refused) == 6 and {r["ours"] for r in refused} == {"refused"}
    assert {r["paper"] for r in rows if r["figure"] == "5"} == {"not published"}


# guerraoui2021: the attack-free average and MDA under ALIE and IPM, without noise and at three epsilons

def privacy_table(group, mda_clean=0.83, noisy_top=0.83, mda_noisy=(0.10, 0.50, 0.60)):
    rows = []
    for b in gu.BATCHES:
        rows.append(cell(group, gu._free(b, None), 0.85))
        rows += [cell(group, gu._mda(b, None, a), mda_clean) for a in gu.ATTACKS]
        small, middle, top = mda_noisy
        for eps in gu.NOISE:
            free = 0.20 if b < 50 else noisy_top if b == 500 else 0.80
            rows.append(cell(group, gu._free(b, eps), free))
            mda = small if b < 50 else top if b == 500 else middle
            rows += [cell(group, gu._mda(b, eps, a), mda) for a in gu.ATTACKS]
    return Results(rows, "final")


def test_guerraoui2021_claims_on_a_hand_made_table(group):
    assert statuses("guerraoui2021", privacy_table(group)) == [HOLDS] * 4
    # MDA loses 15 points without noise; noise costs 25 at batch 500; MDA keeps up with the noisy average; no gain
    failing = privacy_table(group, 0.70, 0.60, (0.80, 0.80, 0.80))
    assert statuses("guerraoui2021", failing) == [FAILS] * 4
    assert statuses("guerraoui2021", Results([], "final")) == [NOT_COMPARABLE] * 4


def test_guerraoui2021_counts_the_cost_beyond_the_sum_of_the_parts(group):
    """Each noisy cell: (noisy average - noisy MDA) - (noiseless average - noiseless MDA), seed by seed: 0.28 and
    0.21 at batches 50 to 500 (8 points a cell at 10 and 25, under the bar), for both attacks and each epsilon."""
    verdict = get("guerraoui2021").claims[2].check(privacy_table(group))
    assert verdict.ours.endswith(": 24/36 (ALIE: 12/18; IPM: 12/18)")
    grid = get("guerraoui2021").comparison(privacy_table(group))
    assert len(grid) == 12 and grid[3] == {"epsilon": "0.1", "rule": "average, no attack", "b=10": "20.0",
                                           "b=25": "20.0", "b=50": "80.0", "b=100": "80.0", "b=250": "80.0",
                                           "b=500": "83.0"}


def test_results_read_node_curves_and_canonical_specs(group):
    table = Results([group("gossip", "none", around(0.8), nodes={"worst_node_accuracy": around(0.6),
                                                                  "mean_node_accuracy": around(0.7)},
                           topology="byzantine-bridge(delta=1)",
                           privacy="dpsgd(clip=0.01,sigma=21.195,delta=1e-6)")], "final")
    where = {"topology": "byzantine-bridge", "privacy": "dpsgd(delta=0.000001,sigma=21.195,clip=0.01)"}
    assert table.estimate(**where).mean == pytest.approx(0.8)
    assert table.estimate(of="worst_node_accuracy", **where).mean == pytest.approx(0.6)
    assert table.estimate(of="mean_node_accuracy", **where).mean == pytest.approx(0.7)
    server = Results([group("average", "none", around(0.8))], "final")
    assert np.isnan(server.estimate(of="worst_node_accuracy").mean)
    with pytest.raises(ValueError, match="worst_node_accuracy"):
        server.estimate(of="consensus_distance")


@pytest.mark.slow
@pytest.mark.parametrize("name, section", [("clippedgossip", "## Decentralised"), ("guerraoui2021", "privacy=dpsgd(clip=0.01")])
def test_the_quick_variant_runs_and_checks_its_claims(name, section, tmp_path):
    done = reproduce(name, quick=True, jobs=2, output=tmp_path / "runs", publish=tmp_path / "published",
                     records=tmp_path / "published" / "runs", progress=False)
    assert done.outcome.failed == 0 and done.dataset == "fashionmnist"
    assert len(done.verdicts) == len(get(name).claims)
    assert check_claims(get(name), tmp_path / "published" / "runs") == done.verdicts
    assert section in (tmp_path / "published" / "report.md").read_text()
