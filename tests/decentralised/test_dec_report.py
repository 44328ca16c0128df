"""A report over decentralised runs: the usual tables of the average model, plus the graph's facts, the worst
node's accuracy and the consensus distance in report.md, decentralised.csv and the figures."""
import csv

from simulator import Config, run
from simulator.report import write_report


def test_the_report_shows_the_graph_the_worst_node_and_the_consensus_distance(tmp_path):
    base = dict(dataset="digits", nb_workers=9, nb_decl_byz=1, batch_size=16, steps=6, eval_every=3,
                topology="torus(byzantine=[4])", output=str(tmp_path / "runs"))
    for aggregator in ("gossip", "clippedgossip"):
        for attack in ("none", "dissensus"):
            run(Config(**base, aggregator=aggregator, attack=attack), progress=False)
    written = write_report(tmp_path / "runs", formats=("png",))
    names = {path.name for path in written}
    assert {"decentralised.csv", "nodes-worst.png", "nodes-consensus.png", "report.md", "table.csv"} <= names
    page = (tmp_path / "runs" / "report.md").read_text()
    assert "## Decentralised: the graph and the honest nodes" in page
    assert "| 0.4 | 0.2 | 0.25 | yes |" in page  # spectral gap, delta_max, Byzantine share, connected
    assert "Worst node's accuracy / consensus distance" in page and "| clippedgossip |" in page
    rows = list(csv.DictReader(open(tmp_path / "runs" / "decentralised.csv")))
    assert len(rows) == 4 and {r["aggregator"] for r in rows} == {"gossip", "clippedgossip"}
    gossip = next(r for r in rows if r["aggregator"] == "gossip" and r["attack"] == "dissensus")
    clipped = next(r for r in rows if r["aggregator"] == "clippedgossip" and r["attack"] == "dissensus")
    assert float(gossip["final_consensus_distance_mean"]) > float(clipped["final_consensus_distance_mean"])
    assert float(gossip["spectral_gap"]) == 0.4


def test_a_server_report_has_no_decentralised_section(tmp_path, finished_run):
    finished_run(Config(output=str(tmp_path)), [0.5, 0.6])
    written = write_report(tmp_path, formats=("png",))
    assert "decentralised.csv" not in {p.name for p in written}
    assert "Decentralised" not in (tmp_path / "report.md").read_text()
