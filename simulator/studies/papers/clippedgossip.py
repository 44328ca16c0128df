"""He, Karimireddy & Jaggi 2022: ClippedGossip keeps decentralised training on track where gossip averaging and
the robust rules applied to each neighbourhood do not.

Three of the paper's experiments, with the settings of the authors' code (clippedgossip.toml): the dumbbell
without attackers (Fig. 4), the Byzantine bridge with its Byzantine weight delta_max swept (Fig. 5), and an honest
ring with Byzantine leaves (Fig. 6). The paper's numbers are the authors' own logs
(``outputs/dumbbell/exp/acc.csv`` and ``outputs/honest_majority/exp/acc.csv`` in their repository, the last
evaluation, iteration 870); Fig. 5's logs are not published. Each claim reads the final accuracy of the honest
nodes' average model (their "Global Average Validation Accuracy") or of the worst honest node's own model, with its
95% interval over seeds; differences of two rules are taken seed by seed.
"""
from __future__ import annotations

import math

from simulator.studies.catalogue import register
from simulator.studies.study import (Claim, Estimate, Results, Study, Verdict, combine, decide, missing, reason, within)

GOSSIP, CLIPPED, GM, MEDIAN, TM = "gossip", "clippedgossip(tau=1)", "geomed(max_iter=8)", "median", "trmean"
RING_CLIPPED = "clippedgossip(tau=0.1)"  # their Fig. 6 runs scp0.1
DUMBBELL = {"topology": "dumbbell", "nb_workers": 10}
SORTED = "groups(k=2)"  # each clique of the dumbbell holds half the classes (their DumbbellSampler)
BRIDGE = "byzantine-bridge(delta={})"
DELTAS = (0, 0.25, 0.5, 0.75, 1)  # delta_max = delta / 4 (one Byzantine neighbour of the bridge, degree 3 + 1)
MAJORITY = "a Byzantine majority at node 0"
RINGS = {"honest majority everywhere": {"topology": "byzantine-ring(lazy=true)", "nb_workers": 15},
         MAJORITY: {"topology": "byzantine-ring(lazy=true)", "nb_workers": 16}}
DISSENSUS, ALIE, IPM = "dissensus(epsilon=1.5)", "alie(z=10)", "ipm"
BRIDGE_ATTACKS = {"dissensus": DISSENSUS, "ALIE": ALIE, "IPM": IPM, "bit flip": "bitflip", "label flip": "labelflip"}
RING_ATTACKS = {"dissensus": DISSENSUS, "ALIE": ALIE, "IPM": IPM}
SAME, BELOW, APART, FALLS, HIGH, LOW = 0.01, 0.02, 0.10, 0.10, 0.70, 0.20  # the bars, each in its claim

# Their acc.csv, iteration 870, in %: the dumbbell's average model (and each clique's), then the ring's.
PAPER_DUMBBELL = {("iid", GOSSIP): 96.4, ("iid", CLIPPED): 96.4, ("iid", GM): 95.7, ("iid", TM): 95.4,
                  (SORTED, GOSSIP): 93.6, (SORTED, CLIPPED): 93.8, (SORTED, GM): 88.6, (SORTED, TM): 86.9}
PAPER_CLIQUES = {GOSSIP: (69.0, 75.6), CLIPPED: (71.4, 72.6), GM: (50.7, 47.2), TM: (50.7, 47.3)}
PAPER_RING = {  # (ring, rule, attack) -> %
    **{("honest majority everywhere", RING_CLIPPED, a): v for a, v in (("dissensus", 89.4), ("ALIE", 94.1),
                                                                      ("IPM", 91.1))},
    **{("honest majority everywhere", GM, a): v for a, v in (("dissensus", 89.3), ("ALIE", 9.8), ("IPM", 11.3))},
    **{("honest majority everywhere", TM, a): v for a, v in (("dissensus", 90.3), ("ALIE", 11.3), ("IPM", 84.8))},
    **{("a Byzantine majority at node 0", RING_CLIPPED, a): v for a, v in (("dissensus", 90.1), ("ALIE", 94.2),
                                                                          ("IPM", 91.5))},
    **{("a Byzantine majority at node 0", GM, a): v for a, v in (("dissensus", 9.8), ("ALIE", 9.8), ("IPM", 11.3))},
    **{("a Byzantine majority at node 0", TM, a): v for a, v in (("dissensus", 9.8), ("ALIE", 9.8), ("IPM", 11.3))},
}
LOGS = "the authors' logs (acc.csv, iteration 870)"


def _dumbbell(rule: str, heterogeneity: str) -> dict:
    return {**DUMBBELL, "aggregator": rule, "heterogeneity": heterogeneity, "attack": "none"}


def _bridge(delta: float, attack: str) -> dict:
    return {"topology": BRIDGE.format(delta), "aggregator": CLIPPED, "attack": attack}


def _ring(ring: str, rule: str, attack: str) -> dict:
    return {**RINGS[ring], "aggregator": rule, "attack": attack}


def _points(status: str, bar: float) -> str:
    """Why a difference decided against ``bar`` (a share) got its status."""
    return reason(status, f"{bar * 100:g} points or more beyond the 95% interval",
                   f"less than {bar * 100:g} points beyond the 95% interval",
                   f"the 95% interval reaches {bar * 100:g} points")


def clipped_matches_gossip(results: Results) -> Verdict:
    gaps = {h: results.difference(_dumbbell(GOSSIP, h), _dumbbell(CLIPPED, h)) for h in ("iid", SORTED)}
    if any(math.isnan(g.mean) for g in gaps.values()):
        return missing("gossip or ClippedGossip on the dumbbell")
    status = combine(within(g, SAME) for g in gaps.values())
    return Verdict(status, f"gossip minus ClippedGossip, seed by seed: iid {gaps['iid'].text()}, split by clique "
                           f"{gaps[SORTED].text()} points",
                   "iid 96.4 vs 96.4; split by clique 93.6 vs 93.8", reason(
                       status, f"both within {SAME * 100:g} point beyond their 95% intervals",
                       f"a gap of {SAME * 100:g} point or more beyond its 95% interval",
                       f"a 95% interval reaches {SAME * 100:g} point"))


def robust_rules_lose_on_sorted_data(results: Results) -> Verdict:
    losses = {name: results.difference(_dumbbell(GOSSIP, SORTED), _dumbbell(rule, SORTED))
              for name, rule in (("geometric median", GM), ("median", MEDIAN))}
    if any(math.isnan(loss.mean) for loss in losses.values()):
        return missing("a rule on the dumbbell split by clique")
    status = combine(decide(loss, BELOW) for loss in losses.values())
    return Verdict(status, "gossip minus each rule, seed by seed: " + "; ".join(
        f"{name} {loss.text()} points" for name, loss in losses.items()),
        "GM 88.6, TM 86.9 against gossip's 93.6", reason(
            status, f"each {BELOW * 100:g} points or more below beyond its 95% interval",
            f"a rule less than {BELOW * 100:g} points below beyond its 95% interval",
            f"a 95% interval reaches {BELOW * 100:g} points"))


def clipped_crosses_the_bridge(results: Results) -> Verdict:
    gap = results.difference(_dumbbell(CLIPPED, SORTED), _dumbbell(GM, SORTED), of="worst_node_accuracy")
    if math.isnan(gap.mean):
        return missing("ClippedGossip or the geometric median on the dumbbell split by clique")
    status = decide(gap, APART)
    worst = {rule: results.estimate(of="worst_node_accuracy", **_dumbbell(rule, SORTED)).text()
             for rule in (CLIPPED, GM)}
    return Verdict(status, f"the worst node's accuracy, ClippedGossip minus the geometric median, seed by seed: "
                           f"{gap.text()} points (ClippedGossip {worst[CLIPPED]}%, geometric median {worst[GM]}%)",
                   "each clique's average model: SCClip 71.4 and 72.6, GM 50.7 and 47.2", _points(status, APART))


def dissensus_grows_with_delta(results: Results) -> Verdict:
    drop = results.difference(_bridge(0, DISSENSUS), _bridge(1, DISSENSUS))
    if math.isnan(drop.mean):
        return missing("ClippedGossip on the bridge under dissensus at delta 0 or 1")
    curve = ", ".join(f"{d / 4:g}: {results.estimate(**_bridge(d, DISSENSUS)).text()}%" for d in DELTAS)
    status = decide(drop, FALLS)
    return Verdict(status, f"delta_max 0 minus 0.25, seed by seed: {drop.text()} points (delta_max: accuracy, "
                           f"{curve})", "a fall with delta_max (Fig. 5; its logs are not published)",
                   _points(status, FALLS))


def _ring_bar(results: Results, ring: str, rule: str, attacks: dict[str, str], bar: float, above: bool,
              words: tuple[str, str, str]) -> Verdict:
    values = {name: results.estimate(**_ring(ring, rule, attack)) for name, attack in attacks.items()}
    if any(math.isnan(v.mean) for v in values.values()):
        return missing(f"{rule} in the ring with {ring}")
    statuses = {name: decide(v, bar, above) for name, v in values.items()}
    status = combine(statuses.values())
    named = ", ".join(name for name, s in statuses.items() if s == status)
    label = "ClippedGossip (tau 0.1)" if rule == RING_CLIPPED else rule
    paper = "; ".join(f"{n} {PAPER_RING[(ring, rule, n)]:.1f}" for n in attacks if (ring, rule, n) in PAPER_RING)
    return Verdict(status, f"{label}, {ring}: " + "; ".join(f"{n} {v.text()}%" for n, v in values.items()),
                   paper or "not run", reason(status, words[0], words[1].format(named), words[2].format(named)))


def clipped_holds_in_the_rings(results: Results) -> Verdict:
    words = (f"every attack leaves it at {HIGH:.0%} or more beyond the 95% interval",
             f"{{}} leaves it below {HIGH:.0%} beyond the 95% interval",
             f"the 95% interval of {{}} reaches {HIGH:.0%}")
    verdicts = [_ring_bar(results, ring, RING_CLIPPED, RING_ATTACKS, HIGH, True, words) for ring in RINGS]
    return _joined(verdicts)


def geomed_fails_in_the_ring(results: Results) -> Verdict:
    ring = "honest majority everywhere"
    words = (f"each at {LOW:.0%} or less beyond the 95% interval", f"{{}} above {LOW:.0%} beyond the 95% interval",
             f"the 95% interval of {{}} reaches {LOW:.0%}")
    return _joined([_ring_bar(results, ring, GM, {"ALIE": ALIE, "IPM": IPM}, LOW, False, words),
                    _ring_bar(results, ring, TM, {"ALIE": ALIE}, LOW, False, words)])


def gossip_breaks(results: Results) -> Verdict:
    words = (f"every attack takes it to {LOW:.0%} or less beyond the 95% interval",
             f"{{}} leaves it above {LOW:.0%} beyond the 95% interval", f"the 95% interval of {{}} reaches {LOW:.0%}")
    return _joined([_ring_bar(results, ring, GOSSIP, RING_ATTACKS, LOW, False, words) for ring in RINGS])


def _joined(verdicts: list[Verdict]) -> Verdict:
    """One verdict for a claim made of parts: the statuses combined, the parts' texts side by side."""
    status = combine(v.status for v in verdicts)
    return Verdict(status, " | ".join(v.ours for v in verdicts), " | ".join(v.paper for v in verdicts),
                   "; ".join(v.reason for v in verdicts if v.status == status))


def beside_the_paper(results: Results) -> list[dict[str, str]]:
    """Every cell of the authors' logs beside ours (final accuracy, mean over seeds, in %)."""
    def row(figure: str, setting: str, rule: str, attack: str, ours: Estimate, paper: float | str,
            missing: str = "-") -> dict[str, str]:
        return {"figure": figure, "setting": setting, "rule": rule, "attack": attack,
                "ours": ours.cell(missing), "paper": paper if isinstance(paper, str) else f"{paper:.1f}"}

    rows = []
    for (h, rule), paper in PAPER_DUMBBELL.items():
        shown = MEDIAN if rule == TM else rule  # the median stands in for their tm1 (clippedgossip.md)
        rows.append(row("4", f"dumbbell, {'iid' if h == 'iid' else 'split by clique'}, average model", shown, "none",
                        results.estimate(**_dumbbell(shown, h)), paper))
    for rule, (first, second) in PAPER_CLIQUES.items():
        shown = MEDIAN if rule == TM else rule
        rows.append(row("4", "dumbbell, split by clique, worst node (theirs: each clique's average model)", shown,
                        "none", results.estimate(of="worst_node_accuracy", **_dumbbell(shown, SORTED)),
                        f"{first:.1f} / {second:.1f}"))
    for name, attack in BRIDGE_ATTACKS.items():
        rows += [row("5", f"bridge, delta_max {d / 4:g}", CLIPPED, name, results.estimate(**_bridge(d, attack)),
                     "not published") for d in DELTAS]
    for (ring, rule, name), paper in PAPER_RING.items():
        refused = ring == MAJORITY and rule in (GM, TM)  # byzsim refuses them at node 0 (clippedgossip.md)
        rows.append(row("6", f"ring with leaves, {ring}", rule, name,
                        results.estimate(**_ring(ring, rule, RING_ATTACKS[name])), paper,
                        "refused" if refused else "-"))
    rows += [row("6", f"ring with leaves, {ring}", GOSSIP, name, results.estimate(**_ring(ring, GOSSIP, attack)),
                 "not run") for ring in RINGS for name, attack in RING_ATTACKS.items()]
    return rows


STUDY = register(Study(
    name="clippedgossip",
    title="Byzantine-Robust Decentralized Learning via ClippedGossip",
    citation="He, Karimireddy & Jaggi, arXiv:2202.01545 (2022)",
    paper_dataset="mnist",
    runs_on="fashionmnist",
    metric="final",
    claims=[
        Claim(f"without attackers on the dumbbell, ClippedGossip (tau 1) ends within {SAME * 100:g} point of gossip "
              "averaging, iid and with each clique holding half the classes", clipped_matches_gossip,
              f"Fig. 4, from {LOGS}."),
        Claim(f"on the dumbbell split by clique, the neighbourhood geometric median and median end {BELOW * 100:g} "
              "points or more below gossip averaging", robust_rules_lose_on_sorted_data,
              f"Fig. 4, from {LOGS}: GM and TM at 88.6 and 86.9 against 93.6; the median stands in for their "
              "one-trimmed TM."),
        Claim(f"on the dumbbell split by clique, ClippedGossip's worst node ends {APART * 100:g} points or more above "
              "the geometric median's: its cliques learn each other's classes", clipped_crosses_the_bridge,
              f"Fig. 4's clique curves, from {LOGS}: with GM each clique's model stays near half the classes."),
        Claim(f"on the Byzantine bridge under dissensus, ClippedGossip's accuracy at delta_max 0.25 is "
              f"{FALLS * 100:g} points or more below delta_max 0", dissensus_grows_with_delta,
              "Fig. 5 (paraphrase): accuracy under the dissensus attack falls as delta_max grows, as the "
              "abstract's O(delta_max zeta^2 / gamma^2) neighbourhood of convergence does."),
        Claim(f"in both rings with Byzantine leaves, ClippedGossip (tau 0.1) keeps {HIGH:.0%} or more under "
              "dissensus, ALIE and IPM", clipped_holds_in_the_rings,
              f"Fig. 6, from {LOGS}: 89.4-94.2% in every cell. The 70% bar is byzsim's, for Fashion-MNIST."),
        Claim(f"with honest majority everywhere, the neighbourhood geometric median falls to {LOW:.0%} or less under "
              "ALIE and IPM, and the trimmed mean under ALIE", geomed_fails_in_the_ring,
              f"Fig. 6, from {LOGS}: GM 9.8 and 11.3, TM 11.3."),
        Claim(f"plain gossip averaging falls to {LOW:.0%} or less under each attack in both rings", gossip_breaks,
              "Not in the paper's figures: byzsim's baseline for its introduction's premise that averaging is not "
              "robust (paraphrase)."),
    ],
    references={"dumbbell": PAPER_DUMBBELL, "cliques": PAPER_CLIQUES, "ring": PAPER_RING},
    comparison=beside_the_paper,
))
