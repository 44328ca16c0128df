"""Topologies and mixing matrices: Metropolis weights, the spectral gap's closed forms, Byzantine weights,
connectivity, and the one-line refusals of graphs that cannot have the run's nodes."""
import math

import pytest
import torch

from experiments.tools import UserException
from simulator.core.decentralised.graph import Graph, adjacency
from simulator.core.decentralised.topologies import TOPOLOGIES

# Each topology with an (n, b) it fits.
FITTING = {
    "complete": (6, 1), "ring": (7, 1), "chain(byzantine=[0])": (5, 1), "star(byzantine=[3])": (6, 1),
    "torus": (12, 2), "torus(rows=3)": (15, 0), "erdos-renyi(p=0.6)": (10, 2), "erdos-renyi(p=0.7,redraw=true)": (9, 1),
    "regular(k=4)": (10, 2), "twocliques": (8, 0), "twocliques(between=2)": (10, 1), "byzantine-bridge": (12, 1),
    "byzantine-bridge(delta=0.5)": (15, 2), "dumbbell": (12, 2), "dumbbell(random_edges=2)": (14, 2),
    "byzantine-ring": (15, 10), "byzantine-ring(leaves=1,lazy=true)": (16, 11),
}


def build(spec, n, b, seed=0):
    return TOPOLOGIES.build(spec).build(n, b, torch.Generator().manual_seed(seed))


def test_every_registered_topology_is_covered():
    assert {spec.split("(")[0] for spec in FITTING} | {"edges"} == set(TOPOLOGIES.names())


@pytest.mark.parametrize("spec", FITTING)
def test_mixing_matrices_are_symmetric_and_doubly_stochastic(spec):
    graph = build(spec, *FITTING[spec])
    w = graph.weights
    assert torch.allclose(w, w.T, atol=1e-15)
    assert torch.allclose(w.sum(dim=0), torch.ones(graph.n, dtype=w.dtype), atol=1e-12)
    assert torch.allclose(w.sum(dim=1), torch.ones(graph.n, dtype=w.dtype), atol=1e-12)
    assert (w >= 0).all() and ((w > 0) | torch.eye(graph.n, dtype=torch.bool) | ~graph.adjacent).all()
    assert int(graph.byzantine.sum()) == FITTING[spec][1]


@pytest.mark.parametrize("n", [5, 8, 13, 20])
def test_the_ring_spectral_gap_is_its_closed_form(n):
    """Metropolis weights 1/3 on a ring: eigenvalues 1/3 + 2/3 cos(2 pi k / n), gap 2/3 (1 - cos(2 pi / n))."""
    assert build("ring", n, 0).spectral_gap == pytest.approx(2 / 3 * (1 - math.cos(2 * math.pi / n)), abs=1e-12)


@pytest.mark.parametrize("n", [2, 5, 9])
def test_the_complete_graph_mixes_in_one_step(n):
    graph = build("complete", n, 0)
    assert torch.allclose(graph.weights, torch.full((n, n), 1 / n, dtype=torch.float64))
    assert graph.spectral_gap == pytest.approx(1.0, abs=1e-12)


def test_byzantine_weight_and_the_honest_mixing_matrix_by_hand():
    """Vertices 0-1-2-3-0 and 0-4, vertex 4 Byzantine: W_04 = 1 / (1 + 3); W~ keeps it on node 0's diagonal."""
    graph = Graph.of(adjacency(5, [(0, 1), (1, 2), (2, 3), (3, 0), (0, 4)]), torch.tensor([0, 0, 0, 0, 1]).bool())
    assert graph.delta.tolist() == [0.25, 0.0, 0.0, 0.0]
    assert graph.byzantine_neighbours.tolist() == [1, 0, 0, 0]
    assert graph.w_tilde()[0, 0].item() == pytest.approx(0.25 + 0.25)
    facts = graph.facts()
    assert facts["delta_max"] == 0.25 and facts["honest_connected"]
    assert facts["max_byzantine_share"] == pytest.approx(1 / 3)


def test_byzantine_placement_random_degree_and_list():
    assert build("star(byzantine=degree)", 6, 1).byzantine_ids.tolist() == [0]
    assert build("ring(byzantine=[2,3])", 8, 2).byzantine_ids.tolist() == [2, 3]
    draws = {tuple(build("complete", 10, 3, seed).byzantine_ids.tolist()) for seed in range(6)}
    assert len(draws) > 1 and build("complete", 10, 3, 4).byzantine_ids.tolist() == \
        build("complete", 10, 3, 4).byzantine_ids.tolist()


def test_the_bridge_delta_scales_only_the_byzantine_weight():
    full, half = build("byzantine-bridge", 15, 2), build("byzantine-bridge(delta=0.5)", 15, 2)
    assert full.delta.max().item() == pytest.approx(2 / 5) and half.delta.max().item() == pytest.approx(1 / 5)
    assert full.spectral_gap == pytest.approx(half.spectral_gap)  # W~ is the same: the weight moved to the diagonal


def test_the_byzantine_ring_by_hand():
    """He et al.'s MaliciousRing, g = 5: every honest node has degree 4 (two ring neighbours, two leaves), so every
    weight is 1/5 and delta_i = 2/5; an 11th Byzantine node on vertex 0 gives it degree 5, weights 1/6, delta 1/2.
    Lazy weights: (W + (1 - 1/5) I) / (2 - 1/5), so 1/9 off the diagonal, 5/9 on it."""
    plain = build("byzantine-ring", 15, 10)
    assert plain.byzantine_ids.tolist() == list(range(5, 15))
    assert plain.adjacent[0].nonzero().flatten().tolist() == [1, 4, 5, 10]
    assert plain.delta.tolist() == pytest.approx([0.4] * 5)
    lazy = build("byzantine-ring(lazy=true)", 15, 10)
    assert lazy.weights[0, 1].item() == pytest.approx(1 / 9) and lazy.weights[0, 0].item() == pytest.approx(5 / 9)
    assert lazy.delta.tolist() == pytest.approx([2 / 9] * 5)
    majority = build("byzantine-ring", 16, 11)
    assert majority.byzantine_neighbours.tolist() == [3, 2, 2, 2, 2]
    assert majority.delta[0].item() == pytest.approx(0.5) and majority.weights[0, 0].item() == pytest.approx(1 / 6)


def test_a_byzantine_cut_disconnects_the_honest_nodes():
    assert build("chain(byzantine=[2])", 5, 1).honest_components == 2
    assert build("chain(byzantine=[0])", 5, 1).honest_components == 1


def test_redraw_gives_new_edges_on_the_same_byzantine_vertices():
    topology = TOPOLOGIES.build("erdos-renyi(p=0.5,redraw=true)")
    g = torch.Generator().manual_seed(1)
    first = topology.build(12, 2, g)
    second = topology.next_graph(first, g)
    assert topology.redraws and torch.equal(first.byzantine, second.byzantine)
    assert not torch.equal(first.adjacent, second.adjacent)


def test_regular_graphs_are_regular():
    graph = build("regular(k=3)", 12, 0, seed=5)
    assert graph.degree.tolist() == [3] * 12


@pytest.mark.parametrize("spec, n, b, words", [
    ("torus", 13, 0, "rows x cols"), ("torus(rows=4)", 10, 0, "4 x cols"), ("ring", 2, 0, "at least 3"),
    ("regular(k=3)", 7, 0, "n k even"), ("twocliques", 7, 0, "n = 2 c"), ("dumbbell", 12, 1, "even b"),
    ("byzantine-bridge", 10, 3, "cliques of m >= b"), ("ring(byzantine=[1])", 6, 2, "places 1 Byzantine"),
    ("ring(byzantine=[9])", 6, 1, "vertex 9"), ("byzantine-ring", 15, 9, "b >= leaves g"),
])
def test_a_topology_that_does_not_fit_the_nodes_is_one_line(spec, n, b, words):
    with pytest.raises(UserException, match=words) as err:
        build(spec, n, b)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("spec, words", [("erdos-renyi", "p in"), ("regular", "k >= 1"), ("edges", "file"),
                                         ("ring(byzantine=centre)", "random, degree"), ("byzantine-bridge(delta=2)",
                                                                                        "delta")])
def test_bad_parameters_are_one_line(spec, words):
    with pytest.raises(UserException, match=words):
        TOPOLOGIES.build(spec)


def test_an_edge_list_is_read_and_unknown_nodes_are_named(tmp_path):
    path = tmp_path / "graph.txt"
    path.write_text("# a square\n0 1\n1 2\n2 3  # last side next\n3 0\n")
    graph = TOPOLOGIES.build(f"edges(file='{path}')").build(4, 0, torch.Generator())
    assert graph.adjacent.sum().item() == 8 and graph.spectral_gap > 0
    path.write_text("0 1\n1 7\n")
    with pytest.raises(UserException, match="line 2 .* names vertex 7, but the run has nodes 0..3"):
        TOPOLOGIES.build(f"edges(file='{path}')").build(4, 0, torch.Generator())
    path.write_text("0 x\n")
    with pytest.raises(UserException, match="line 1"):
        TOPOLOGIES.build(f"edges(file='{path}')").build(4, 0, torch.Generator())
