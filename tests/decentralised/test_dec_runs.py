"""Whole decentralised runs on the embedded digits data: the server's average as a special case, determinism,
resume, what a run records, and the one-line refusals of bad input before anything is written."""
import json

import pytest
import torch

from experiments.tools import UserException
from simulator import Config, run
from simulator.cli.main import main
from simulator.core.decentralised.simulation import Decentralised
from simulator.core.store import CHECKPOINT, SUMMARY


def _without_time(rows):
    return [{k: v for k, v in row.items() if k != "step_time"} for row in rows]


def _state(result):
    return torch.load(result.folder / CHECKPOINT, weights_only=False)


@pytest.fixture
def small(tmp_path):
    def make(**changes):
        base = dict(dataset="digits", nb_workers=9, nb_decl_byz=1, batch_size=16, steps=20, lr=0.1, eval_every=10,
                    checkpoint_every=5, seed=3, topology="torus(byzantine=[4])", aggregator="clippedgossip",
                    attack="dissensus", output=str(tmp_path / "runs"))
        return Config(**{**base, **changes})
    return make


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_gossip_on_the_complete_graph_is_the_servers_average(small, tmp_path, momentum):
    """No Byzantine node, W = J/n: every node stays at the server's model, to float tolerance."""
    common = dict(nb_workers=6, nb_decl_byz=0, attack="none", momentum=momentum, momentum_at="worker", steps=15,
                  eval_every=5)
    server = run(small(**common, topology=None, aggregator="average", output=str(tmp_path / "server")), progress=False)
    nodes = run(small(**common, topology="complete", aggregator="gossip"), progress=False)
    reference = torch.cat([p.flatten() for p in _state(server)["module"].values()])
    models = _state(nodes)["models"]
    assert models.shape[0] == 6
    assert torch.allclose(models, reference.expand_as(models), atol=2e-5)
    for a, b in zip(server.evaluations, nodes.evaluations):
        assert a["accuracy"] == pytest.approx(b["accuracy"], abs=2e-3)
        assert b["consensus_distance"] < 1e-9
    assert [m["train_loss"] for m in server.metrics] == pytest.approx([m["train_loss"] for m in nodes.metrics],
                                                                      rel=1e-4)


def test_a_run_records_the_graph_and_the_nodes(small):
    result = run(small(eval_nodes=3), progress=False)
    topology = result.summary["topology"]
    assert topology["byzantine_nodes"] == [4] and topology["honest_connected"] is True
    assert topology["spectral_gap"] > 0 and topology["delta_max"] == pytest.approx(0.2)
    row = result.evaluations[-1]
    assert row["worst_node_accuracy"] <= row["mean_node_accuracy"] and row["consensus_distance"] >= 0
    assert result.summary["final_worst_node_accuracy"] == row["worst_node_accuracy"]
    assert "consensus_distance" in result.metrics[-1] and result.metrics[-1]["byzantine_selected"] == 1
    assert result.summary["final_accuracy"] > 0.5


def test_same_config_same_seed_is_bit_identical(small, tmp_path):
    config = small(aggregator="trmean", attack="alie", momentum=0.9, momentum_at="worker")
    a = run(config, progress=False)
    b = run(Config(**{**config.to_dict(), "output": str(tmp_path / "again")}), progress=False)
    assert _without_time(a.metrics) == _without_time(b.metrics) and a.evaluations == b.evaluations
    assert torch.equal(_state(a)["models"], _state(b)["models"])
    c = run(Config(**{**config.to_dict(), "seed": 4}), progress=False)
    assert _without_time(c.metrics) != _without_time(a.metrics)


@pytest.mark.parametrize("changes", [
    dict(aggregator="clippedgossip", attack="dissensus"),
    dict(aggregator="median", attack="labelflip", momentum=0.9, momentum_at="worker"),  # Byzantine nodes' models
    dict(aggregator="csplus", attack="ipm(begin=3,every=2)", topology="erdos-renyi(p=0.6,redraw=true)"),
    dict(aggregator="cclip(tau=1)", attack="signflip", topology="complete"),  # one centre per node
])
def test_a_killed_run_resumes_to_the_same_result(small, tmp_path, killed_at, changes):
    config = small(**changes)
    reference = run(Config(**{**config.to_dict(), "output": str(tmp_path / "reference")}), progress=False)
    killed_at(config, 13, Decentralised)
    assert not (config.folder() / SUMMARY).exists()
    assert torch.load(config.folder() / CHECKPOINT, weights_only=False)["t"] == 10
    resumed = run(config, progress=False)
    assert _without_time(resumed.metrics) == _without_time(reference.metrics)
    assert resumed.evaluations == reference.evaluations
    assert torch.equal(_state(resumed)["models"], _state(reference)["models"])


def test_a_redrawn_graph_changes_every_round(small):
    result = run(small(topology="erdos-renyi(p=0.6,redraw=true)", aggregator="gossip", attack="none", steps=6,
                       eval_every=3), progress=False)
    adjacency = _state(result)["graph"]["adjacent"]
    first = Config(**{**json.loads((result.folder / "config.json").read_text()), "output": "x"})
    from simulator.core.decentralised.checks import first_graph
    assert not torch.equal(first_graph(first).adjacent, adjacency)


@pytest.mark.parametrize("changes, words", [
    (dict(topology="chain(byzantine=[3])"), "2 disconnected parts"),
    (dict(topology="ring(byzantine=[0,1])", nb_decl_byz=2, aggregator="krum"),
     "krum requires n >= 2f \\+ 3 at node 2, which has 2 neighbours of which 1 Byzantine"),
    (dict(topology="torus(rows=4)"), "needs n = 4 x cols"),
    (dict(topology="dumbbell", nb_decl_byz=1), "even b"),
    (dict(topology=None, aggregator="clippedgossip"), "gossip rule of decentralised runs"),
    (dict(local_steps=2), "one local step per node"),
    (dict(momentum=0.9), "momentum_at = worker"),
    (dict(aggregator="fltrust"), "reads the server's round"),
    # node 4 of the 3 x 3 torus has 3 Byzantine neighbours of 4: ALIE's z needs f < floor(n/2 + 1)
    (dict(topology="torus(byzantine=[1,3,5])", nb_decl_byz=3, attack="alie"), "alie.*n = 5, f = 3"),
])
def test_bad_input_is_one_line_before_anything_is_written(small, tmp_path, changes, words):
    config = small(**changes)
    with pytest.raises(UserException, match=words) as err:
        run(config, progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists()


def test_an_edge_list_naming_unknown_nodes_is_refused(small, tmp_path):
    graph = tmp_path / "graph.txt"
    graph.write_text("0 1\n1 2\n2 9\n")
    with pytest.raises(UserException, match="names vertex 9, but the run has nodes 0..8"):
        run(small(topology=f"edges(file='{graph}')"), progress=False)
    assert not (tmp_path / "runs").exists()


def test_the_command_takes_a_topology_and_refuses_a_bad_one_in_one_line(tmp_path, capsys):
    code = main(["train", "--dataset", "digits", "--nb-workers", "9", "--nb-decl-byz", "1", "--topology",
                 "torus(byzantine=[4])", "--aggregator", "clippedgossip(tau=1)", "--attack", "dissensus",
                 "--steps", "4", "--eval-every", "2", "--eval-nodes", "2", "--output", str(tmp_path), "--quiet"])
    assert code == 0 and "final accuracy" in capsys.readouterr().out
    code = main(["train", "--dataset", "digits", "--nb-workers", "9", "--topology", "torus(rows=2)",
                 "--output", str(tmp_path / "bad"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("byzsim: error:") and err.count("\n") == 1 and "rows >= 3" in err
    assert not (tmp_path / "bad").exists()


def test_server_run_ids_do_not_change():
    """A run without a topology hashes no decentralised field: its id is the one it had before them."""
    config = Config(seed=5)
    assert "topology" not in config.identity() and "eval_nodes" not in config.identity()
    assert "topology" in Config(seed=5, topology="ring").identity()
