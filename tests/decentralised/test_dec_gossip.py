"""Gossip rules and Byzantine messages against hand computations on a 5-node graph, and the batched paths
against one call per node.

The graph: the square 0-1-2-3-0 plus the edge 0-4, vertex 4 Byzantine. Metropolis weights: W_01 = W_03 = W_04 =
1/4 (node 0 has degree 3), W_12 = W_23 = 1/3, so node 0 keeps 1/4, nodes 1 and 3 keep 5/12, node 2 keeps 1/3.
The honest models are 1-D numbers (a second coordinate 0): x_0 = 0, x_1 = 1, x_2 = 2, x_3 = 3.
"""
import math

import pytest
import torch

import aggregators
import attacks
from attacks.base import AttackContext
from simulator.core.decentralised.gossip import GOSSIP, gossip_rule
from simulator.core.decentralised.graph import Graph, adjacency
from simulator.core.decentralised.layout import Layout
from simulator.core.decentralised.messages import Messages, NodeRule
from simulator.core.decentralised.neighbourhood import NeighbourhoodRule
from simulator.core.decentralised.topologies import TOPOLOGIES

GRAPH = Graph.of(adjacency(5, [(0, 1), (1, 2), (2, 3), (3, 0), (0, 4)]), torch.tensor([0, 0, 0, 0, 1]).bool())
LAYOUT = Layout.of(GRAPH, dtype=torch.float64)
MODELS = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]], dtype=torch.float64)


def messages(spec, weighted=True, models=MODELS, layout=LAYOUT, rule=None):
    attack = attacks.get(spec)
    node_rule = (lambda k: NodeRule(rule, None)) if rule is not None else (lambda k: None)
    return Messages(attack, layout, weighted, node_rule, torch.Generator().manual_seed(0), 10)(models, None, 0, 0.1)


def test_dissensus_by_hand():
    """Aimed at node 0: x_0 - 1.5 (1/4 (1 - 0) + 1/4 (3 - 0)) / (1/4) = -6; with epsilon 1 plain gossip stays put."""
    sent = messages("dissensus")
    assert sent.tolist() == [[-6.0, 0.0]]
    assert gossip_rule("gossip")(MODELS, sent, LAYOUT)[0].tolist() == [-0.5, 0.0]  # (0 + 1 + 3 - 6) / 4
    still = messages("dissensus(epsilon=1)")
    assert gossip_rule("gossip")(MODELS, still, LAYOUT)[0, 0].item() == pytest.approx(0.0, abs=1e-15)


def test_dissensus_with_equal_weights_is_the_attack_on_its_rows():
    """Under an aggregation rule the weights are equal: (1 + 3) / 1 neighbour-weight: 0 - 1.5 * 4 = -6 as well; the
    registered attack on [x_0, x_1, x_3] gives the same."""
    sent = messages("dissensus", weighted=False, rule=aggregators.get("median"))
    forged = attacks.get("dissensus")(MODELS[[0, 1, 3]], 1, AttackContext(4, 1, None, torch.Generator()))
    assert sent.tolist() == forged.tolist() == [[-6.0, 0.0]]


def test_gossip_averaging_is_the_mixing_matrix_product():
    sent = torch.tensor([[5.0, 0.0]], dtype=torch.float64)
    out = gossip_rule("gossip")(MODELS, sent, LAYOUT)
    every = torch.cat([MODELS, sent])  # vertex order: 0..3 honest, 4 Byzantine
    assert torch.allclose(out, (GRAPH.weights @ every)[:4], atol=1e-15)


def test_clipped_gossip_with_a_fixed_radius_by_hand():
    """tau = 1: node 0 gets 0 + 1/4 (1 + 1 - 1) = 0.25; node 1: 1 + 1/4 (-1) + 1/3 (1); node 2: unchanged;
    node 3: 3 + 1/3 (-1) + 1/4 (-1)."""
    out = gossip_rule("clippedgossip(tau=1)")(MODELS, messages("dissensus"), LAYOUT)
    assert out[:, 0].tolist() == pytest.approx([0.25, 1 - 1 / 4 + 1 / 3, 2.0, 3 - 1 / 3 - 1 / 4])
    assert out[:, 1].abs().max() == 0


def test_clipped_gossip_adaptive_radii_and_csplus_by_hand():
    """Node 0's distances are 1, 3 and 6 (the message): the code's radius is the second largest, 3, so the message
    is clipped to -3: 0 + 1/4 (1 + 3 - 3) = 0.25. The theorem's radius: the closest weights up to 1 - delta = 3/4 are
    itself (0) and node 1 (1): sqrt(1/4 * 1 / (1/4)) = 1, giving 0.25 too. CS+: the cumulative weight reaches 1 - 2/4
    exactly at distance 1: tau = 1."""
    sent = messages("dissensus")
    for spec in ("clippedgossip", "clippedgossip(radius=theorem)", "csplus"):
        assert gossip_rule(spec)(MODELS, sent, LAYOUT)[0, 0].item() == pytest.approx(0.25), spec
    # nodes without Byzantine neighbours: the theorem's radius and CS+ do not clip (plain gossip); the code's does
    plain = gossip_rule("gossip")(MODELS, sent, LAYOUT)
    for spec in ("clippedgossip(radius=theorem)", "csplus"):
        assert torch.allclose(gossip_rule(spec)(MODELS, sent, LAYOUT)[1:], plain[1:])


def test_csplus_half_step():
    out = gossip_rule("csplus(eta=0.5)")(MODELS, messages("dissensus"), LAYOUT)
    assert out[0, 0].item() == pytest.approx(0.125)


@pytest.mark.parametrize("spec", GOSSIP.names())
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_messages(spec, bad):
    """A message with a non-finite norm is clipped to nothing by the robust rules; plain gossip is not robust."""
    out = gossip_rule(spec)(MODELS, torch.tensor([[bad, 0.0]], dtype=torch.float64), LAYOUT)
    assert torch.isfinite(out).all() != (spec == "gossip")
    assert torch.isfinite(out[1:]).all()


@pytest.mark.parametrize("spec", ["gossip", "clippedgossip", "clippedgossip(tau=0.7)", "clippedgossip(radius=theorem)",
                                  "csplus"])
def test_one_node_at_a_time_matches_the_batched_rule(spec):
    """`one` (what an adaptive attack's trial calls) gives node 0's row of the batched rule."""
    rule = gossip_rule(spec)
    sent = messages("dissensus")
    rows = torch.cat([MODELS[[0, 1, 3]], sent])
    weights = LAYOUT.weight[0][LAYOUT.valid[0]]
    assert torch.allclose(rule.one(rows, weights, 1), rule(MODELS, sent, LAYOUT)[0], atol=1e-12)


def random_case(seed=0, spec="erdos-renyi(p=0.5)", n=14, b=3, d=6):
    generator = torch.Generator().manual_seed(seed)
    graph = TOPOLOGIES.build(spec).build(n, b, generator)
    layout = Layout.of(graph, dtype=torch.float64)
    models = torch.randn(len(graph.honest), d, generator=generator, dtype=torch.float64)
    sent = torch.randn(len(layout.target), d, generator=generator, dtype=torch.float64)
    return graph, layout, models, sent


@pytest.mark.parametrize("spec", ["average", "median", "trmean", "meamed", "krum", "nnm>trmean"])
def test_a_rule_at_every_node_is_the_rule_on_each_neighbourhood(spec):
    """Nodes of several neighbourhood sizes and f (an Erdos-Renyi graph); Krum on the complete graph, where every
    node meets n >= 2f + 3."""
    graph, layout, models, sent = random_case(**(dict(spec="complete", n=12, b=2) if spec == "krum" else {}))
    rule = aggregators.get(spec)
    assert len({(int(n), int(f)) for n, f in zip(layout.size, layout.f)}) > (spec != "krum")
    assert all(rule.unmet(int(n), int(f)) is None for n, f in zip(layout.size, layout.f))
    out = NeighbourhoodRule(rule, layout, graph.honest.tolist(), seed=0)(models, sent, layout)
    sources = torch.cat([models, sent])
    for k in range(layout.h):
        rows = torch.cat([torch.tensor([k]), layout.index[k][layout.valid[k]]])
        assert torch.allclose(out[k], rule(sources[rows], int(layout.f[k])), atol=1e-12), k


def test_stateful_rules_keep_one_state_per_node():
    graph, layout, models, sent = random_case()
    rule = NeighbourhoodRule(aggregators.get("cclip(tau=0.5)"), layout, graph.honest.tolist(), seed=0)
    first = rule(models, sent, layout)
    again = rule(models, sent, layout)
    assert not torch.allclose(first, again)  # each centre moved
    state = rule.state_dict()
    assert len(state["nodes"]) == layout.h


@pytest.mark.parametrize("spec", ["alie", "alie(z=1.0)", "ipm", "ipm(epsilon=0.5)", "dissensus"])
def test_batched_attacks_equal_the_registered_attack_on_each_neighbourhood(spec):
    """ALIE, IPM (and dissensus with equal weights) computed for all targets at once equal one call of the
    registered attack per target, on its own and honest neighbours' models, told n_i and f_i."""
    graph, layout, models, _ = random_case(seed=3, spec="complete", n=12, b=2)
    sent = messages(spec, weighted=False, models=models, layout=layout, rule=aggregators.get("average"))
    attack = attacks.get(spec)
    for k in range(layout.h):
        mine = (layout.target == k).nonzero().flatten()
        honest = torch.cat([torch.tensor([k]), layout.index[k][layout.valid[k] & ~layout.byzantine[k]]])
        context = AttackContext(int(layout.size[k]), len(mine), None, torch.Generator())
        expected = attack(models[honest], len(mine), context)
        assert torch.allclose(sent[mine], expected, atol=1e-10), k


def test_any_other_attack_is_sent_to_each_target_from_its_neighbourhood():
    """signflip on node k's neighbourhood: every Byzantine neighbour sends -(mean of x_k and its honest neighbours)."""
    graph, layout, models, _ = random_case(seed=4, spec="ring(byzantine=[0,5])", n=12, b=2)
    sent = messages("signflip", models=models, layout=layout, rule=aggregators.get("median"))
    for e, k in enumerate(layout.target.tolist()):
        honest = torch.cat([torch.tensor([k]), layout.index[k][layout.valid[k] & ~layout.byzantine[k]]])
        assert torch.allclose(sent[e], -models[honest].mean(dim=0))


def test_gossip_rule_names_are_not_aggregation_rule_names():
    assert not set(GOSSIP.names()) & set(aggregators.names())


@pytest.mark.parametrize("rule", ["clippedgossip(tau=0.5)", "median"])
def test_an_adaptive_attack_tries_its_candidates_against_the_targets_own_rule(rule):
    """opt-alie's line search calls ctx.aggregator.trial: the target's gossip rule (with its weights) or its
    aggregation rule; the messages stay finite and depend on the rule."""
    graph, layout, models, _ = random_case(seed=2, spec="complete", n=10, b=2)
    built = gossip_rule(rule) or aggregators.get(rule)
    weights = lambda k: layout.weight[k][layout.valid[k]] if gossip_rule(rule) else None  # noqa: E731
    sent = Messages(attacks.get("opt-alie(evals=3)"), layout, gossip_rule(rule) is not None,
                    lambda k: NodeRule(built, weights(k)), torch.Generator().manual_seed(0), 10)(models, None, 0, 0.1)
    assert sent.shape == (len(layout.target), models.shape[1]) and torch.isfinite(sent).all()
