"""A decentralised run's checks: the settings that go with a topology, its graph, the rule at every honest node.

`Config.validate` calls `check`, so each problem ends the run with one line before
anything is written: a setting a decentralised round has no use for, a topology
that cannot have the run's n nodes, an edge list naming unknown nodes, an honest
subgraph in several parts, a node with more Byzantine neighbours than its rule
tolerates (named), a rule that reads what only a server has. `unmet` is the
rule's part alone, what a grid skips a combination for.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.tools import UserException
from simulator.core.decentralised.gossip import GossipRule
from simulator.core.decentralised.graph import Graph
from simulator.core.optim import LOOKAHEAD
from simulator.core.seeding import generator

if TYPE_CHECKING:
    from simulator.core.config import Config

__all__ = ["check", "unmet", "first_graph", "node_requirement"]


def _settings(c: "Config") -> list[tuple[bool, str]]:
    rule = c.parts["aggregator"]
    return [
        (not c.federated, "a decentralised run (topology) takes one local step per node per round: no client pool, "
                          "local steps or server optimiser"),
        (not c.parts["execution"].distributed, "a decentralised run computes in one process (execution local)"),
        (c.momentum == 0 or c.momentum_at == "worker",
         "momentum in a decentralised run is each node's own: set momentum_at = worker"),
        (c.nesterov != LOOKAHEAD, 'look-ahead Nesterov needs a server\'s buffer: use nesterov = true or false'),
        (getattr(c, "privacy", "none") == "none", "differential privacy acts at a server's workers: not in a "
                                                  "decentralised run"),
        (isinstance(rule, GossipRule) or not rule.needed(),
         f"{c.aggregator} reads the server's round ({', '.join(sorted(rule.needed()))}), which a decentralised node "
         "does not have"),
    ]


def first_graph(c: "Config") -> Graph:
    """The run's graph as its first round draws it (the "topology" stream of its seed)."""
    return c.parts["topology"].build(c.nb_workers, c.real_byz, generator(c.seed, "topology"))


def connected(c: "Config", graph: Graph) -> None:
    """Raise the one-line error of an honest subgraph in several parts."""
    parts = graph.honest_components
    if parts != 1:
        raise UserException(f"Topology {c.topology!r} leaves the honest nodes in {parts} disconnected parts (Byzantine "
                            f"vertices {graph.byzantine_ids.tolist()}): gossip cannot join them; place the Byzantine "
                            "nodes elsewhere or add edges.")


def node_requirement(c: "Config", graph: Graph) -> str | None:
    """The rule's first unmet requirement at an honest node (its neighbourhood and itself, told its Byzantine
    neighbours), naming the node, or None."""
    rule = c.parts["aggregator"]
    if isinstance(rule, GossipRule):
        return None
    sizes, fs = (graph.degree[graph.honest] + 1).tolist(), graph.byzantine_neighbours.tolist()
    for vertex, n, f in zip(graph.honest.tolist(), sizes, fs):
        unmet = rule.unmet(n, f)
        if unmet is not None:
            return f"{unmet} at node {vertex}, which has {n - 1} neighbours of which {f} Byzantine (n = {n}, f = {f})"
    return None


def check(c: "Config") -> Graph:
    """Raise `UserException` on the first problem of a decentralised configuration; return its first graph."""
    for ok, message in _settings(c):
        if not ok:
            raise UserException(f"Invalid configuration: {message}.")
    graph = first_graph(c)
    connected(c, graph)
    unmet = node_requirement(c, graph)
    if unmet is not None:
        raise UserException(f"{c.aggregator} requires {unmet}.")
    return graph


def unmet(c: "Config") -> str | None:
    """The rule's unmet requirement at some honest node of the run's first graph (a bad graph raises)."""
    return node_requirement(c, first_graph(c))
