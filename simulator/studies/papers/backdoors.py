"""A defence matrix against backdoors in FLPoison's manner (Zhang et al., arXiv:2502.03801): eight rules against four
backdoor attacks and Fang et al.'s two untargeted attacks, clean accuracy and ASR side by side.

Only the benchmark's abstract and third-party summaries of it could be read here (backdoors.md), so each claim is
a finding such a benchmark states, tied to a quoted or paraphrased sentence and marked as which. Each reads the
ASR (or the clean accuracy) at the end of training with its 95% interval over seeds; differences of two rules are
taken seed by seed.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from simulator.studies.catalogue import register
from simulator.studies.study import (FAILS, HOLDS, NOT_COMPARABLE, UNDECIDED, Claim, Estimate, Results, Study, Verdict,
                                     combine, decide, missing)

RULES = ("average", "median", "krum", "trmean", "fltrust", "flame", "foolsgold", "nnm>cclip")
BACKDOORS = ("badnets", "dba", "model-replacement", "neurotoxin")
UNTARGETED = ("fang-krum", "fang-trim")
NAMED = ("median", "fltrust", "flame")  # the benchmark's robust defences (a summary of it) that our matrix runs
BOTH = ("fltrust", "flame")  # named among the best against both kinds of attack (the same summaries)
SUCCESS, RESISTED, REMOVED, KEPT = 0.50, 0.20, 0.50, 0.05  # the bars, each said in its claim

SOK = "Zhang, Liu, He, Wu, Cong & Huang, arXiv:2502.03801 (v1), abstract"
SUMMARY = ("sciencestack.ai's machine-written summary of arXiv:2502.03801, not the paper's words (those could not be "
           "read here)")
KEY_RESULTS = "arxivlens.com's machine-written key results of arXiv:2502.03801, not the paper's words"
NO_NUMBERS = "no number: the benchmark's tables could not be read here (backdoors.md)"


def _asr(results: Results, rule: str, attack: str) -> Estimate:
    return results.estimate(of="asr", aggregator=rule, attack=attack)


def _ran(results: Results, rules: Iterable[str]) -> list[str]:
    """The rules with a run under some backdoor attack."""
    return [r for r in rules if any(not math.isnan(_asr(results, r, a).mean) for a in BACKDOORS)]


def any_of(statuses: Iterable[str]) -> str:
    """One status for "at least one holds": any holds, all fail, else undecided (not comparable when none ran)."""
    statuses = [s for s in statuses if s != NOT_COMPARABLE]
    if not statuses:
        return NOT_COMPARABLE
    if HOLDS in statuses:
        return HOLDS
    return FAILS if all(s == FAILS for s in statuses) else UNDECIDED


def _highest(results: Results, rule: str) -> str:
    """The rule's highest mean ASR over the backdoors that ran, with the attack reaching it."""
    values = {a: _asr(results, rule, a) for a in BACKDOORS}
    attack = max((a for a, e in values.items() if not math.isnan(e.mean)), key=lambda a: values[a].mean)
    return f"{rule} {values[attack].text()} ({attack})"


def _named(statuses: dict[str, str], status: str) -> str:
    return ", ".join(k for k, s in statuses.items() if s == status)


def backdoors_succeed_undefended(results: Results) -> Verdict:
    asr = {a: _asr(results, "average", a) for a in BACKDOORS}
    statuses = {a: decide(e, SUCCESS) for a, e in asr.items()}
    status = combine(statuses.values())
    if status == NOT_COMPARABLE:
        return missing("the average under each backdoor", NO_NUMBERS)
    return Verdict(status, "ASR against the average: " + "; ".join(f"{a} {e.text()}%" for a, e in asr.items()),
                   NO_NUMBERS, {HOLDS: f"every backdoor reaches {SUCCESS:.0%} beyond its 95% interval",
                                FAILS: f"{_named(statuses, FAILS)} stays below {SUCCESS:.0%} beyond its interval"}.get(
                       status, f"the 95% interval of {_named(statuses, UNDECIDED)} reaches {SUCCESS:.0%}"))


def no_rule_resists_every_backdoor(results: Results) -> Verdict:
    rules = _ran(results, RULES)
    if not rules:
        return missing("no rule under a backdoor", NO_NUMBERS)
    broken = {r: any_of(decide(_asr(results, r, a), RESISTED) for a in BACKDOORS) for r in rules}
    status = combine(broken.values())
    return Verdict(status, "each rule's highest ASR over the backdoors: " + "; ".join(_highest(results, r)
                                                                                       for r in rules),
                   NO_NUMBERS, {HOLDS: f"every rule lets some backdoor reach {RESISTED:.0%} beyond its interval",
                                FAILS: f"{_named(broken, FAILS)} keeps every backdoor below {RESISTED:.0%} beyond "
                                       "its interval"}.get(
                       status, f"for {_named(broken, UNDECIDED)} the 95% interval of some backdoor's ASR reaches "
                               f"{RESISTED:.0%} and none is above it"))


def named_defences_resist(results: Results) -> Verdict:
    rules = _ran(results, NAMED)
    if len(rules) < len(NAMED):
        return missing(f"{', '.join(NAMED)} under the backdoors", NO_NUMBERS)
    held = {r: combine(decide(_asr(results, r, a), RESISTED, above=False) for a in BACKDOORS) for r in rules}
    status = combine(held.values())
    return Verdict(status, "highest ASR over the backdoors: " + "; ".join(_highest(results, r) for r in rules),
                   NO_NUMBERS, {HOLDS: f"each keeps every backdoor below {RESISTED:.0%} beyond its interval",
                                FAILS: f"{_named(held, FAILS)} lets some backdoor reach {RESISTED:.0%} beyond its "
                                       "interval"}.get(
                       status, f"for {_named(held, UNDECIDED)} some backdoor's 95% interval reaches "
                               f"{RESISTED:.0%}"))


def the_average_is_the_most_replaced(results: Results) -> Verdict:
    attack = "model-replacement"
    others = [r for r in _ran(results, RULES) if r != "average"]
    leads = {r: results.difference({"aggregator": "average", "attack": attack},
                                   {"aggregator": r, "attack": attack}, of="asr") for r in others}
    statuses = {r: decide(lead, 0.0) for r, lead in leads.items()}
    status = combine(statuses.values())
    if status == NOT_COMPARABLE:
        return missing("the average or another rule under model replacement", NO_NUMBERS)
    return Verdict(status, f"ASR of the average under model replacement {_asr(results, 'average', attack).text()}%; "
                           "its lead over each rule, seed by seed, in points: "
                           + "; ".join(f"{r} {lead.text()}" for r, lead in leads.items()), NO_NUMBERS,
                   {HOLDS: "the average's ASR is above every other rule's beyond the 95% interval",
                    FAILS: f"{_named(statuses, FAILS)} has a higher ASR than the average beyond the interval"}.get(
                       status, f"the 95% interval of the lead over {_named(statuses, UNDECIDED)} reaches 0"))


def flame_removes_the_backdoor(results: Results) -> Verdict:
    attacks = ("badnets", "model-replacement")
    drops = {a: results.difference({"aggregator": "average", "attack": a}, {"aggregator": "flame", "attack": a},
                                   of="asr") for a in attacks}
    statuses = {a: decide(d, REMOVED) for a, d in drops.items()}
    status = combine(statuses.values())
    if status == NOT_COMPARABLE:
        return missing("the average or FLAME under BadNets and model replacement", NO_NUMBERS)
    return Verdict(status, "ASR of the average minus FLAME's, seed by seed, in points: "
                           + "; ".join(f"{a} {d.text()} (FLAME {_asr(results, 'flame', a).text()}%)"
                                       for a, d in drops.items()), "FLAME \"removes backdoors effectively\"",
                   {HOLDS: f"FLAME is {REMOVED * 100:g} points or more lower under both beyond the interval",
                    FAILS: f"under {_named(statuses, FAILS)} FLAME is less than {REMOVED * 100:g} points lower "
                           "beyond the interval"}.get(
                       status, f"the 95% interval under {_named(statuses, UNDECIDED)} reaches {REMOVED * 100:g} "
                               "points"))


def robust_to_both_kinds(results: Results) -> Verdict:
    free = {"aggregator": "average", "attack": "none"}
    losses = {(r, a): results.difference(free, {"aggregator": r, "attack": a}) for r in BOTH for a in UNTARGETED}
    statuses = {f"{r} under {a}": decide(loss, KEPT, above=False) for (r, a), loss in losses.items()}
    status = combine(statuses.values())
    if status == NOT_COMPARABLE:
        return missing("the attack-free average, or FLTrust or FLAME under Fang's attacks,", NO_NUMBERS)
    return Verdict(status, f"clean accuracy of the attack-free average ({results.estimate(**free).text()}%) minus "
                           "each rule's under attack, seed by seed, in points: "
                           + "; ".join(f"{r} under {a} {loss.text()}" for (r, a), loss in losses.items()),
                   NO_NUMBERS, {HOLDS: f"each loses less than {KEPT * 100:g} points beyond its 95% interval",
                                FAILS: f"{_named(statuses, FAILS)} loses {KEPT * 100:g} points or more beyond "
                                       "the interval"}.get(
                       status, f"the 95% interval of {_named(statuses, UNDECIDED)} reaches {KEPT * 100:g} points"))


STUDY = register(Study(
    name="backdoors",
    title="SoK: Benchmarking Poisoning Attacks and Defenses in Federated Learning (FLPoison): the backdoor matrix",
    citation="Zhang, Liu, He, Wu, Cong & Huang, arXiv:2502.03801 (2025)",
    paper_dataset="mnist",
    runs_on="fashionmnist",
    metric="final",
    claims=[
        Claim(f"without a defence (the average) every backdoor attack, BadNets, DBA, model replacement and Neurotoxin, "
              f"reaches an ASR of {SUCCESS:.0%} or more", backdoors_succeed_undefended,
              f"{SOK}: federated learning's \"decentralized nature exposes it to client-side data poisoning attacks "
              "(DPAs) and model poisoning attacks (MPAs)\". The 50% bar is byzsim's."),
        Claim(f"no rule keeps the ASR of every backdoor attack below {RESISTED:.0%}", no_rule_resists_every_backdoor,
              f"Paraphrase of {SOK}: \"While numerous proposed defenses claim substantial effectiveness, their "
              "evaluation is typically done in isolation with limited attack strategies, raising concerns about "
              "their validity.\" That no rule withstands every backdoor is byzsim's reading of that concern, not a "
              "sentence of the paper."),
        Claim(f"the median, FLTrust and FLAME each keep the ASR of every backdoor attack below {RESISTED:.0%} "
              "(iid data)", named_defences_resist,
              f"{SUMMARY}: \"certain defenses (Median, FLTrust, DnC, FLAME) offering robust protection across "
              "settings but still leaving gaps under non-IID data\" (DnC is not in byzsim)."),
        Claim("under model replacement the average has the highest ASR of the eight rules",
              the_average_is_the_most_replaced,
              "Paraphrase of Bagdasaryan et al., AISTATS 2020, Sec. 4: the attacker scales its update by n / eta "
              "so that the server's average lands on its model, the average being the rule the scaling is made "
              "for."),
        Claim(f"FLAME lowers the ASR of BadNets and of model replacement by {REMOVED * 100:g} points or more against "
              "the average", flame_removes_the_backdoor,
              "Nguyen et al., USENIX Security 2022 (arXiv:2101.02281), abstract: \"FLAME removes backdoors "
              "effectively with a negligible impact on the benign performance of the models.\""),
        Claim(f"FLTrust and FLAME also withstand the untargeted attacks: under Fang's attacks on Krum and on the "
              f"trimmed mean each keeps its clean accuracy within {KEPT * 100:g} points of the attack-free average",
              robust_to_both_kinds,
              f"{SOK}: \"existing studies overlook the mutual effectiveness of defenses against both DPAs and MPAs\"; "
              f"{KEY_RESULTS}: \"The study identifies Median, FLTrust, DnC, and FLAME as the best defenses against "
              "model poisoning attacks\" and \"Data poisoning defenses like Krum, M.K., Bulyan, FLTrust, DnC, and "
              "FLAME outperform others generally\"."),
    ],
))
