"""What the rule is told about each step in a run (`simulator.core.rounds`): senders, the root set and the server's
own update, the parameters; runs and resumes with each backdoor defence."""
import copy
import math
import os
import socket
import subprocess
import sys

import pytest
import torch

from experiments.tools import UserException
from simulator import Config, run
from simulator.core.build import root_set, training_set
from simulator.core.federated import ClientPool, Everyone
from simulator.core.rounds import Rounds
from simulator.core.simulation import Simulation

DEFENCES = ["fltrust(root=50)", "flame", "foolsgold", "normclip", "crfl"]
POOL = dict(clients=12, participation=0.5, local_steps=2, server_opt="sgd(lr=1)")


def recording(sim):
    """Every `RoundInfo` the simulation hands its rule, in order."""
    seen, inform = [], sim.aggregator.inform
    sim.aggregator.inform = lambda info: (seen.append(info), inform(info))[1]
    return seen


def test_senders_are_the_workers_in_order_without_a_pool(small):
    config = small(nb_workers=7, nb_decl_byz=2)
    assert Everyone(config).select().clients.tolist() == list(range(7))


def test_senders_of_a_pool_round_are_the_selected_honest_clients_then_nb_honest_plus_the_byzantine_ones(small):
    config = small(nb_workers=7, nb_decl_byz=3, clients=12, participation=0.5)
    chosen = ClientPool(config, torch.Generator().manual_seed(1)).select()
    assert chosen.clients.tolist() == chosen.honest.tolist() + (chosen.byzantine + 9).tolist()
    sim = Simulation(small(nb_decl_byz=3, aggregator="foolsgold", attack="signflip", steps=4, **POOL))
    seen = recording(sim)
    for _ in range(4):
        sim.step()
    for info, row in zip(seen, sim.metrics):
        ids = info.clients.tolist()
        f = row["byzantine_selected"]
        assert len(ids) == 6 and len(set(ids)) == 6 and all(0 <= i < 12 for i in ids)
        assert all(i >= 9 for i in ids[6 - f:]) and all(i < 9 for i in ids[:6 - f])
    assert sim.aggregator.history.shape[0] <= 12


def test_the_root_set_is_drawn_from_its_own_stream_and_left_out_of_the_split(small):
    config = small(aggregator="fltrust(root=40)", validation_split=0.1)
    (_, labels), parts, _ = training_set(config, torch.device("cpu"))
    root = root_set(config, len(labels))
    assert len(root) == 40 and torch.equal(root, root_set(small(aggregator="fltrust(root=40)",
                                                                    validation_split=0.1), len(labels)))
    split = torch.cat(parts)
    assert len(split) + 40 == len(labels) and not set(split.tolist()) & set(root.tolist())
    plain = small(validation_split=0.1)
    assert root_set(plain, len(labels)) is None  # nothing held out for rules without a root set
    assert len(torch.cat(training_set(plain, torch.device("cpu"))[1])) == len(labels)


def test_a_root_set_as_large_as_the_training_set_is_refused(small):
    with pytest.raises(UserException, match="root set of 5000 training samples"):
        Simulation(small(aggregator="fltrust(root=5000)"))


@pytest.mark.parametrize("federated", [False, True])
def test_the_reference_is_the_servers_own_update_on_its_root_batch(small, federated):
    """One gradient on the next root batch at the current parameters (or the round's K local steps), l2 added
    as the workers add it, buffers untouched."""
    sim = Simulation(small(aggregator="fltrust(root=30)", l2=1e-3, **(POOL if federated else {})))
    seen = recording(sim)
    sim.step()
    sampler, params = copy.deepcopy(sim.rounds.server.byzantine_sampler), sim.model.get().clone()
    local = sim._local(sim.config.lr)
    if federated:
        expected = sim.engine.local_updates(*local.batches(sampler, None), lr=local.lr, momentum=local.momentum,
                                            l2=local.l2, clip=local.clip, update_buffers=False)[0][0]
    else:
        expected = sim.engine.gradients(*sampler.sample(), update_buffers=False)[0][0] + 1e-3 * params
    sim.step()
    assert torch.equal(seen[1].reference, expected)


def test_the_reference_costs_a_gradient_pass_only_when_a_rule_needs_it(small, monkeypatch):
    calls = []
    original = Rounds.reference
    monkeypatch.setattr(Rounds, "reference", lambda self, local: (calls.append(1), original(self, local))[1])
    for aggregator, expected in (("median", 0), ("foolsgold", 0), ("crfl", 0), ("fltrust", 3),
                                 ("clip>fltrust", 3)):
        calls.clear()
        sim = Simulation(small(aggregator=aggregator, steps=3))
        seen = recording(sim)
        for _ in range(3):
            sim.step()
        assert len(calls) == expected, aggregator
        needs = sim.aggregator.needed()
        for info in seen:
            assert (info.clients is not None) == ("clients" in needs)
            assert (info.reference is not None) == ("reference" in needs)
            assert (info.params is not None) == ("params" in needs) and (info.lr is not None) == ("lr" in needs)
        assert (sim.rounds.server is None) == (expected == 0)


def test_an_adaptive_attacks_trials_see_the_round_of_their_step(small):
    sim = Simulation(small(aggregator="fltrust(root=30)", attack="opt-alie(evals=4)", steps=3))
    seen, trials, trial = recording(sim), [], sim.aggregator.trial
    sim.aggregator.trial = lambda *args, **kwargs: (trials.append((len(seen), sim.aggregator.info)),
                                                    trial(*args, **kwargs))[1]
    for _ in range(3):
        sim.step()
    assert len(trials) >= 3 * 4
    assert all(info is seen[count - 1] for count, info in trials)


@pytest.mark.parametrize("changes, what", [
    (dict(server_opt="adam(lr=0.01)", **{k: v for k, v in POOL.items() if k != "server_opt"}), "server_opt adam"),
    (dict(momentum=0.9, momentum_at="aggregate"), "momentum at aggregate"),
    (dict(momentum=0.9, momentum_at="update"), "momentum at update"),
    (dict(weight_decay=1e-4), "weight_decay"),
])
def test_crfl_refuses_servers_that_do_not_apply_the_aggregate_as_it_is(small, changes, what):
    with pytest.raises(UserException, match=f"crfl sets the next parameters.*{what}"):
        Simulation(small(aggregator="crfl", **changes))


@pytest.mark.parametrize("changes", [{}, POOL, dict(momentum=0.9, momentum_at="worker"),
                                     dict(momentum=0.9, momentum_at="server")])
def test_crfl_keeps_the_parameters_within_its_threshold(small, changes):
    """The digits model's parameters have norm about 2: rho = 1 clips them at every step (FedAvg would not)."""
    sim = Simulation(small(aggregator="crfl(sigma=0,rho=1)", steps=6, **changes))
    for _ in range(6):
        sim.step()
        assert sim.model.get().norm().item() == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("federated", [False, True], ids=["one-gradient", "pool"])
@pytest.mark.parametrize("aggregator", DEFENCES)
def test_each_defence_trains_a_few_steps_against_an_adaptive_attack(small, aggregator, federated):
    result = run(small(aggregator=aggregator, attack="opt-alie(evals=3)", steps=6, eval_every=3,
                       **(POOL if federated else {})), progress=False)
    assert result.summary["steps"] == 6 and math.isfinite(result.summary["final_accuracy"])
    assert result.summary["final_accuracy"] > 0.15


@pytest.mark.parametrize("aggregator, changes", [("foolsgold", POOL), ("foolsgold", {}), ("fltrust(root=30)", {}),
                                                 ("fltrust(root=30)", POOL), ("flame", {}), ("crfl", POOL)])
def test_a_killed_run_with_a_defence_resumes_bit_identical(small, tmp_path, killed_at, aggregator, changes):
    config = small(aggregator=aggregator, attack="labelflip", steps=20, **changes)
    reference = run(Config(**{**config.to_dict(), "output": str(tmp_path / "reference")}), progress=False)
    killed_at(config, 15)
    resumed = run(config, progress=False)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "step_time"} for r in rows]  # noqa: E731
    assert strip(resumed.metrics) == strip(reference.metrics) and resumed.evaluations == reference.evaluations


def test_a_stateful_defence_after_mixing_is_refused_by_the_config(small):
    with pytest.raises(UserException, match="stateful defence without client identities"):
        small(aggregator="bucketing>foolsgold").validate()
    small(aggregator="clip(tau=5)>foolsgold").validate()


def _torchrun(args: list[str], world: int = 3) -> list[tuple[int, str, str]]:
    """Run ``byzsim train args`` as ``world`` ranks with the environment torchrun gives them (gloo, localhost)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ranks = [subprocess.Popen([sys.executable, "-m", "simulator", "train", *args], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": "0",
                                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"})
             for rank in range(world)]
    return [(p.wait(300), *p.communicate()) for p in ranks]


@pytest.mark.slow
@pytest.mark.parametrize("aggregator", ["fltrust(root=40)", "foolsgold"])
def test_torchrun_gives_the_rule_the_same_rounds_as_one_process(tmp_path, aggregator):
    """Rank 0 computes the server's own update with its engine and knows the senders: same run bit for bit."""
    results = _torchrun(["--dataset", "digits", "--nb-workers", "9", "--nb-decl-byz", "2", "--aggregator", aggregator,
                         "--attack", "labelflip", "--steps", "12", "--eval-every", "6", "--quiet",
                         "--execution", "torchrun(timeout=60)", "--output", str(tmp_path / "dist")])
    assert all(code == 0 for code, _, _ in results), results
    (folder,) = (tmp_path / "dist").iterdir()
    local = run(Config(dataset="digits", nb_workers=9, nb_decl_byz=2, aggregator=aggregator, attack="labelflip",
                       steps=12, eval_every=6, output=str(tmp_path / "local")), progress=False).folder
    assert (folder / "evaluations.csv").read_text() == (local / "evaluations.csv").read_text()
