"""One decentralised run in memory: every honest node's model, one round, one evaluation.

A round (He et al. 2022, Algorithm 1, as their code runs it: a local step, then
the gossip step on the stepped models):

1. every honest node samples a batch from its own partition and takes a local
   SGD step at its own parameters x_i: one batched engine pass over all nodes
   (``at=`` their [h, d] parameters, chunked by the engine's memory budget), the
   l2 term, clipping and momentum per node (each node's own buffer), weight decay,
   the scheduled lr: x_i' = x_i - lr (m_i + wd x_i);
2. the Byzantine nodes make their messages, one per edge to an honest node
   (`simulator.core.decentralised.messages`); under a data attack, or on a round
   its schedule leaves out, they send their own models, which they step like
   honest nodes on their own (poisoned) batches and mix by plain gossip;
3. every honest node combines x_i' with what its neighbours send through the
   run's rule (a gossip rule, or an aggregation rule on each neighbourhood), all
   nodes at once.

Every node starts from the same initial model. With ``redraw`` on a random
topology, each round after the first draws a new graph on the same Byzantine
vertices (until its honest subgraph is connected and the rule holds at every
node). Batch-norm buffers are shared by the nodes: the module's, moved by each
pass as the engines move them.

An evaluation tests the honest nodes' average model (``accuracy``,
``test_loss``: the report's curves and tables read them as a server run's) and
records the consensus distance (1/h) sum_i |x_i - mean|^2 and the mean and worst
accuracy over a sample of honest nodes' own models (``eval_nodes``, drawn once;
every node by default), one test pass per node.
"""
from __future__ import annotations

import copy
import math
import time

import torch

from attacks.base import AttackContext, DataAttack
from experiments import Criterion, datasets
from experiments.datasets import flip_mask
from experiments.loss import LOSSES
from experiments.tools import UserException
from simulator.core.build import build_engine, build_model, samplers, training_set
from simulator.core.config import Config
from simulator.core.decentralised.checks import node_requirement
from simulator.core.decentralised.gossip import GossipRule
from simulator.core.decentralised.graph import Graph
from simulator.core.decentralised.layout import Layout
from simulator.core.decentralised.messages import Messages, NodeRule
from simulator.core.decentralised.neighbourhood import NeighbourhoodRule
from simulator.core.metrics import data_summary, step_metrics
from simulator.core.optim import Momentum
from simulator.core.seeding import generator
from simulator.core.simulation import Simulation, resolve_device
from simulator.core.workers import LocalWorkers

__all__ = ["Decentralised", "NODE_METRIC_COLUMNS", "NODE_EVAL_COLUMNS"]

NODE_METRIC_COLUMNS = ("consensus_distance",)  # metrics.csv's extra column, after a server run's
NODE_EVAL_COLUMNS = ("consensus_distance", "mean_node_accuracy", "worst_node_accuracy")  # evaluations.csv's
REDRAWS = 100  # draws of a round's graph before giving up on a connected one


class Decentralised(Simulation):
    """A decentralised run: `step()` is one round of every node, `evaluate()` tests the average and the nodes.

    It shares a server run's data, model, engine and evaluation (the inherited `_score`, `_backdoor`), not its
    server: the nodes' models are rows of ``models`` [h, d].
    """

    def __init__(self, config: Config, remote: object | None = None) -> None:
        if remote is not None:
            raise UserException("A decentralised run computes in one process: run it without torchrun.")
        c = self.config = config.validate()
        self.device = resolve_device(c.device)
        self.attack = copy.deepcopy(c.parts["attack"])
        self.attack_generator = generator(c.seed, "attack")
        self.num_classes = datasets.num_classes(c.dataset_name)
        train, parts, self.validation = training_set(c, self.device)
        test_x, test_y = datasets.load_tensors(c.dataset_name, False, c.data_root,
                                               normalise=c.parts["dataset"].normalise)
        self.test = (test_x.to(self.device), test_y.to(self.device))
        self.evaluation_flips = generator(c.seed, "evaluation flip") if c.parts["dataset"].flip else None
        self.data = data_summary(train[1], parts, self.num_classes)
        self.sampler, self.byzantine_sampler = samplers(c, train, parts)
        self.model = build_model(c, self.device)
        self.loss_fn = LOSSES[c.loss]
        self.engine = build_engine(c, self.model, train, self.device)
        self.workers = LocalWorkers(self.engine, self.sampler, self.byzantine_sampler, self.num_classes)
        self.criterion = Criterion(c.parts["criterion"].name, **c.parts["criterion"].params)
        params = self.model.get()
        self.momentum = Momentum(c, params.numel(), self.device, params.dtype)  # one row per node (worker placement)
        self.topology = c.parts["topology"]
        self.topology_generator = generator(c.seed, "topology")
        self.rule = copy.deepcopy(c.parts["aggregator"])
        self.neighbourhood: NeighbourhoodRule | None = None
        self._use(self.topology.build(c.nb_workers, c.real_byz, self.topology_generator))
        self.facts = self.graph.facts()  # the first graph's, reported
        h, b = len(self.graph.honest), len(self.graph.byzantine_ids)
        self.models = params.detach().repeat(h, 1)  # every node starts from the same model
        self.average: torch.Tensor | None = None  # the honest models' mean after the last round (its own cache)
        count = h if c.eval_nodes is None else min(c.eval_nodes, h)
        self.tested = torch.randperm(h, generator=generator(c.seed, "evaluation nodes"))[:count].sort().values
        self.t = 0
        self.previous_aggregate = None
        self.privacy = None  # a server run's mechanism; refused with a topology
        self.metrics: list[dict] = []
        self.evaluations: list[dict] = []
        self._prepare_attack(train)
        self.byzantine_models = params.detach().repeat(b, 1) if b and self._byzantine_keep_models() else None
        self._probe_model()

    # ----------------------------------------------------------------- graph
    def _use(self, graph: Graph) -> None:
        """Make ``graph`` the rounds' graph: its layout, the rule at each node, the messages."""
        self.graph = graph
        self.layout = Layout.of(graph, self.device, self.model.get().dtype)
        vertices = graph.honest.tolist()
        if not isinstance(self.rule, GossipRule):
            if self.neighbourhood is None:
                self.neighbourhood = NeighbourhoodRule(self.rule, self.layout, vertices, self.config.seed)
            else:
                self.neighbourhood.relayout(self.layout)
        self.gossip = self.rule if isinstance(self.rule, GossipRule) else self.neighbourhood
        self.messages = Messages(self.attack, self.layout, isinstance(self.rule, GossipRule), self._node_rule,
                                 self.attack_generator, self.num_classes)
        self.mixing = graph.weights[graph.byzantine_ids].to(self.device, self.model.get().dtype)

    def _node_rule(self, node: int) -> NodeRule:
        """Honest node ``node``'s rule as an attack's context gives it."""
        if isinstance(self.rule, GossipRule):
            layout = self.layout
            return NodeRule(self.rule, layout.weight[node][layout.valid[node]])
        return NodeRule(self.neighbourhood.rule_of(node), None)

    def _redraw(self) -> None:
        """A new graph for this round, on the same Byzantine vertices: connected, the rule holding at every node."""
        for _ in range(REDRAWS):
            graph = self.topology.next_graph(self.graph, self.topology_generator)
            if graph.honest_components == 1 and node_requirement(self.config, graph) is None:
                self._use(graph)
                return
        raise UserException(f"Topology {self.config.topology!r} drew no graph whose honest nodes are connected and "
                            f"meet {self.config.aggregator}'s requirement in {REDRAWS} tries at round {self.t}.")

    # ----------------------------------------------------------------- probe
    def _byzantine_keep_models(self) -> bool:
        """Whether the Byzantine nodes keep models: a data attack, a schedule that rests, or an attack reading their
        own vectors (probed on stand-in vectors, as a server run probes its attack)."""
        c, attack = self.config, self.attack
        if attack.last_attacked(c.steps) is None:
            raise UserException(f"Attack {attack.spec!r} never attacks within the run's {c.steps} steps "
                                f"(its schedule begins at step {attack.begin}, counted from 0).")
        if isinstance(attack, DataAttack) or any(not attack.attacks_at(t) for t in range(c.steps)):
            return True
        read = []
        state = copy.deepcopy(attack.state_dict())
        pairs = {(int(n), int(f)): node for node, (n, f) in
                 enumerate(zip(self.layout.size.tolist(), self.layout.f.tolist())) if f}
        try:
            for (n, f), node in pairs.items():  # every neighbourhood shape, so a bad parameter is refused here
                def vectors(poison, momentum, f=f):
                    read.append(True)
                    return torch.zeros(f, 2)
                context = AttackContext(nb_workers=n, decl_f=f, aggregator=_StandIn(), generator=torch.Generator(),
                                        num_classes=self.num_classes, vectors=vectors)
                attack.byzantine(torch.zeros(n - f, 2), f, context)
        finally:
            attack.load_state_dict(state)
        return bool(read)

    def _probe_model(self) -> None:
        """Does the model take this data? One forward pass and the criterion on two test samples."""
        with torch.no_grad():
            try:
                self.criterion(self.model.run(self.test[0][:2]), self.test[1][:2])
            except RuntimeError as err:
                raise UserException(f"Model {self.config.model_name!r} cannot take {self.config.dataset!r} inputs of "
                                    f"shape {tuple(self.test[0].shape[1:])}: {str(err).splitlines()[0]}") from None

    # ------------------------------------------------------------------ round
    def _local_step(self, params: torch.Tensor, gradients: torch.Tensor, first_row: int, lr: float,
                    momentum: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(what each node steps with [k, d], its stepped parameters [k, d]): l2, clipping, its momentum, decay."""
        c = self.config
        vectors = gradients + c.l2 * params if c.l2 else gradients
        if c.clip is not None:
            vectors = vectors * (c.clip / vectors.norm(dim=1, keepdim=True)).clamp(max=1.0).nan_to_num(nan=0.0)
        if momentum:
            vectors = self.momentum.at_workers(vectors, first_row)
        step = vectors + c.weight_decay * params if c.weight_decay else vectors
        return vectors, params - lr * step

    def step(self) -> dict:
        """One round of every node; returns its metrics row."""
        start = time.perf_counter()
        c = self.config
        lr = c.parts["lr_schedule"].rate(c.lr, self.t, c.steps)
        if self.topology.redraws and self.t > 0:
            self._redraw()
        h = len(self.graph.honest)
        gradients, losses = self.workers.honest(at=self.models)
        with torch.no_grad():
            vectors, half = self._local_step(self.models, gradients, 0, lr)
            byzantine = None
            if self.byzantine_models is not None:
                attacking = isinstance(self.attack, DataAttack) and self.attack.attacks_at(self.t)
                raw = self.workers.byzantine(self.attack.poison if attacking else None, at=self.byzantine_models)
                keeps = getattr(self.attack, "momentum", True)  # a data attack may send raw gradients
                _, byzantine = self._local_step(self.byzantine_models, raw, h, lr, keeps)
            messages = self.messages(half, byzantine, self.t, lr)
            before = self.average if self.average is not None else self.models.mean(dim=0)
            self.models = self.gossip(half, messages, self.layout)
            if byzantine is not None:  # the Byzantine nodes mix by plain gossip over all their neighbours
                every = torch.empty(self.graph.n, half.shape[1], dtype=half.dtype, device=half.device)
                every[self.graph.honest.to(half.device)] = half
                every[self.graph.byzantine_ids.to(half.device)] = byzantine
                self.byzantine_models = self.mixing @ every
            after = self.average = self.models.mean(dim=0)
            moved = (before - after) / lr  # the average model's step, per unit of lr
            row = {"step": self.t, "lr": lr, **step_metrics(losses, vectors, moved),
                   "consensus_distance": self.consensus_distance(after),
                   "byzantine_selected": len(self.graph.byzantine_ids), "step_time": time.perf_counter() - start}
        self.t += 1
        self.metrics.append(row)
        return row

    def consensus_distance(self, mean: torch.Tensor | None = None) -> float:
        """(1/h) sum_i |x_i - mean|^2 over the honest nodes' models (``mean`` their average, if known)."""
        deviation = self.models - (self.models.mean(dim=0) if mean is None else mean)
        return float(deviation.square_().sum() / len(self.models))

    def finite(self) -> bool:
        return math.isfinite(self.metrics[-1]["train_loss"]) and bool(torch.isfinite(self.models).all())

    # ------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self) -> dict:
        """The honest nodes' average model's evaluation (a server run's row), then the consensus distance and the
        mean and worst accuracy of the tested nodes' own models; the model is left at the average."""
        params = self.model.get()
        average = self.models.mean(dim=0)
        params.copy_(average)
        row = super().evaluate()
        flips = None if self.evaluation_flips is None else \
            flip_mask((len(self.test[1]),), self.evaluation_flips).to(self.device)
        accuracies = []
        for node in self.tested.tolist():
            params.copy_(self.models[node])
            accuracies.append(self._score(*self.test, flips)[0])
        params.copy_(average)
        row.update(consensus_distance=self.consensus_distance(), mean_node_accuracy=sum(accuracies) / len(accuracies),
                   worst_node_accuracy=min(accuracies))
        return row

    @torch.no_grad()
    def broken_evaluation(self) -> dict:
        """The evaluation with every node's parameters NaN, which a diverged run reaches if it runs on."""
        saved = self.models.clone()
        flips = self.evaluation_flips.get_state() if self.evaluation_flips is not None else None
        self.models.fill_(math.nan)
        try:
            return self.evaluate()
        finally:
            self.evaluations.pop()
            self.models = saved
            self.model.get().copy_(saved.mean(dim=0))
            if flips is not None:
                self.evaluation_flips.set_state(flips)

    def summary(self) -> dict:
        """What summary.json adds for a decentralised run: the graph's facts and the nodes' last evaluation."""
        last = self.evaluations[-1]
        return {"topology": self.facts, "final_consensus_distance": last["consensus_distance"],
                "final_mean_node_accuracy": last["mean_node_accuracy"],
                "final_worst_node_accuracy": last["worst_node_accuracy"],
                "best_worst_node_accuracy": max(e["worst_node_accuracy"] for e in self.evaluations)}

    # ------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict:
        return {
            **self._shared_state(),
            "models": self.models.clone(),
            "byzantine_models": None if self.byzantine_models is None else self.byzantine_models.clone(),
            "rule": self.neighbourhood.state_dict() if self.neighbourhood is not None else {},
            "topology_generator": self.topology_generator.get_state(),
            "graph": {"adjacent": self.graph.adjacent.clone(), "byzantine": self.graph.byzantine.clone()},
        }

    def load_state_dict(self, state: dict) -> None:
        self._load_shared_state(state)
        self.models = state["models"].to(self.device)
        self.average = None
        if state["byzantine_models"] is not None:
            self.byzantine_models = state["byzantine_models"].to(self.device)
        self.topology_generator.set_state(state["topology_generator"])
        graph = state["graph"]
        if not torch.equal(graph["adjacent"], self.graph.adjacent):  # a redrawn graph: the last round's
            self._use(Graph(graph["adjacent"], graph["byzantine"],
                            self.topology.mixing(graph["adjacent"], graph["byzantine"])))
        if self.neighbourhood is not None:
            self.neighbourhood.load_state_dict(state["rule"])


class _StandIn:
    """A rule for the attack probe's stand-in vectors: the mean (no state, no randomness)."""

    def __call__(self, rows: torch.Tensor, f: int) -> torch.Tensor:
        return rows.mean(dim=0)

    def trial(self, rows: torch.Tensor, f: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self(rows, f)
