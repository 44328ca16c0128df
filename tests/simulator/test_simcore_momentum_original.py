"""Momentum placements and look-ahead Nesterov against ByzantineMomentum's formulas, computed by hand.

The workers' gradients are replaced by the gradient of 0.5 ||w - c_i||^2, g_i(w) = w - c_i,
so each step can be recomputed in a few lines exactly as ByzantineMomentum's ``attack.py`` does it
(its placements `update`, `server`, `worker`, and its Nesterov, which takes each gradient at the
look-ahead point). The rule is Krum and the attack IPM, which do not commute with adding one vector to
every input, so the pre-rule `server` placement is told apart from momentum on the aggregate.
"""
from __future__ import annotations

import pytest
import torch

import aggregators
from simulator import Config
from simulator.core.simulation import Simulation

MU, DAMPENING, LR, STEPS, N, F, EPS = 0.9, 0.1, 0.05, 4, 7, 1, 0.1


class QuadraticWorkers:
    """Honest worker i's gradient at w is w - c_i (its loss 0.5 ||w - c_i||^2)."""

    name = "quadratic"

    def __init__(self, sim: Simulation, centres: torch.Tensor) -> None:
        self.sim, self.centres = sim, centres

    def honest(self, rows=None, local=None, at=None):
        w = self.sim.model.get()
        points = w.expand_as(self.centres) if at is None else at
        return points - self.centres, torch.zeros(len(self.centres))

    def byzantine(self, poison, rows=None, local=None, at=None):  # IPM never asks for honest-like vectors
        raise AssertionError("not used")


def _simulation(momentum_at: str, nesterov: bool | str, rule: str = "krum",
                attack: str = f"ipm(epsilon={EPS})") -> tuple[Simulation, torch.Tensor]:
    config = Config(dataset="digits", model="simples-logit(in_features=64)", nb_workers=N, nb_decl_byz=F,
                    aggregator=rule, attack=attack, lr=LR, momentum=MU, dampening=DAMPENING,
                    momentum_at=momentum_at, nesterov=nesterov, engine="loop", steps=STEPS)
    sim = Simulation(config)
    d = sim.model.get().numel()
    centres = torch.randn(N - F, d, generator=torch.Generator().manual_seed(3)) * 3
    sim.workers = QuadraticWorkers(sim, centres)
    return sim, centres


def _original(placement: str, lookahead: bool, w0: torch.Tensor, centres: torch.Tensor, rule: str = "krum"):
    """ByzantineMomentum's step, written from its attack.py: placements update / server / worker."""
    krum = aggregators.get(rule)
    w, h = w0.clone(), len(centres)
    workers = torch.zeros(h, w.numel())  # grad_momentum_workers
    server = torch.zeros(w.numel())      # grad_momentum_server
    for _ in range(STEPS):
        grads = []
        for i in range(h):
            point = w
            if lookahead:  # the model moved by momentum * lr times the buffer, then restored
                point = w - MU * LR * (workers[i] if placement == "worker" else server)
            grads.append(point - centres[i])
        if placement == "worker":
            for i in range(h):
                workers[i] = MU * workers[i] + (1 - DAMPENING) * grads[i]
            honest = [workers[i].clone() for i in range(h)]
        elif placement == "server":
            honest = [g * (1 - DAMPENING) + MU * server for g in grads]
        else:
            honest = grads
        mean = torch.stack(honest).mean(dim=0)
        byzantine = [-EPS * mean] * F  # IPM: epsilon times the honest mean, negated
        aggregate = krum(torch.stack(honest + byzantine), F)
        if placement == "server":
            server = aggregate
            w = w - LR * aggregate
        elif placement == "update":
            server = MU * server + (1 - DAMPENING) * aggregate
            w = w - LR * server
        else:
            w = w - LR * aggregate
    return w


# byzsim's placement -> ByzantineMomentum's name for the same computation
PLACEMENTS = {"worker": "worker", "server": "server", "aggregate": "update", "update": "update"}


@pytest.mark.parametrize("lookahead", [False, True])
@pytest.mark.parametrize("placement", list(PLACEMENTS))
def test_placements_match_the_original_formulas(placement, lookahead):
    sim, centres = _simulation(placement, "lookahead" if lookahead else False)
    w0 = sim.model.get().clone()
    for _ in range(STEPS):
        sim.step()
    expected = _original(PLACEMENTS[placement], lookahead, w0, centres)
    torch.testing.assert_close(sim.model.get(), expected, rtol=1e-5, atol=1e-5)


def test_server_differs_from_aggregate_where_the_rule_does_not_commute():
    """Krum under IPM: before the rule or on the aggregate give different models (the reason for both names)."""
    runs = {}
    for placement in ("server", "aggregate"):
        sim, _ = _simulation(placement, False)
        for _ in range(STEPS):
            sim.step()
        runs[placement] = sim.model.get().clone()
    assert (runs["server"] - runs["aggregate"]).abs().max() > 1e-3


def test_server_equals_aggregate_where_the_rule_commutes():
    """The median commutes with adding one vector to every input, and so does a Byzantine worker sending the
    honest mean minus z standard deviations (ALIE): the same model either way."""
    runs = {}
    for placement in ("server", "aggregate"):
        sim, _ = _simulation(placement, False, rule="median", attack="alie")
        for _ in range(STEPS):
            sim.step()
        runs[placement] = sim.model.get().clone()
    torch.testing.assert_close(runs["server"], runs["aggregate"], rtol=1e-5, atol=1e-6)


def test_lookahead_leaves_the_parameters_where_they_were():
    """The look-ahead moves the model only while gradients are taken: restored bit for bit."""
    sim, _ = _simulation("aggregate", "lookahead")
    sim.momentum.buffer.fill_(1.0)
    seen = []
    honest = sim.workers.honest
    sim.workers.honest = lambda rows=None, local=None, at=None: (seen.append(sim.model.get().clone()),
                                                                 honest(rows, local, at))[1]
    before = sim.model.get().clone()
    sim._looking_ahead(lambda at: sim.workers.honest(None, None, at), 0, N - F, LR)
    torch.testing.assert_close(seen[0], before - MU * LR * torch.ones_like(before))
    assert torch.equal(sim.model.get(), before)


@pytest.mark.parametrize("engine", ["vmap", "grouped", "loop"])
def test_every_engine_takes_gradients_at_per_worker_points(engine):
    """Engine.gradients(at=...) equals moving the model to each worker's point and taking its gradient."""
    config = Config(dataset="digits", model="simples-logit(in_features=64)", nb_workers=4, nb_decl_byz=0,
                    engine=engine)
    sim = Simulation(config)
    inputs, targets = sim.sampler.sample(None)
    w = sim.model.get()
    points = w + 0.1 * torch.randn(len(inputs), w.numel(), generator=torch.Generator().manual_seed(1))
    got, _ = sim.engine.gradients(inputs, targets, at=points)
    before = w.clone()
    for i in range(len(inputs)):
        w.copy_(points[i])
        one, _ = sim.engine.gradients(inputs[i:i + 1], targets[i:i + 1])
        torch.testing.assert_close(got[i], one[0], rtol=1e-5, atol=1e-6)
    w.copy_(before)


def test_old_server_runs_keep_their_ids_under_aggregate():
    """The placement once called server is aggregate now, under the same id; server is a new run."""
    old_server_id = "digits-average-none-f2-s1-7a341a849e"  # Config(momentum=0.9, momentum_at="server") before
    # engine="auto": the default engine then (the default is now "fastest", another engine, another id)
    assert Config(momentum=0.9, momentum_at="aggregate", engine="auto").run_id() == old_server_id
    assert Config(momentum=0.9, momentum_at="server", engine="auto").run_id() != old_server_id


def test_configuration_checks():
    with pytest.raises(Exception, match="torch-form Nesterov"):
        Config(momentum=0.9, momentum_at="server", nesterov=True).validate()
    with pytest.raises(Exception, match="one-gradient steps"):
        Config(momentum=0.9, nesterov="lookahead", local_steps=2).validate()
    with pytest.raises(Exception, match="nesterov must be one of"):
        Config(momentum=0.9, nesterov="ahead").validate()
