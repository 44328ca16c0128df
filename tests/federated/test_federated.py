"""Federated rounds: local steps, client sampling from a pool, server optimisers, resume, bad input."""
import pytest
import torch
import torch.nn.functional as F

from experiments import Configuration, Model
from simulator import Config, run
from simulator.cli.main import main
from simulator.core.engines import make_engine
from simulator.core.federated import ClientPool
from simulator.core.server import FedOpt
from simulator.core.simulation import Simulation
from simulator.core.store import CHECKPOINT

BASE = dict(dataset="digits", nb_workers=9, nb_decl_byz=2, steps=6, lr=0.1, eval_every=3, checkpoint_every=3)


@pytest.mark.parametrize("attack", ["signflip", "labelflip", "none"])
@pytest.mark.parametrize("aggregator", ["average", "median", "trmean", "krum"])
def test_one_local_step_with_full_participation_is_todays_step(tmp_path, aggregator, attack):
    """Clients send -lr g; these rules are positively homogeneous, and the server (lr 1) steps on -aggregate."""
    today = Simulation(Config(**BASE, aggregator=aggregator, attack=attack, output=str(tmp_path)))
    rounds = Simulation(Config(**BASE, aggregator=aggregator, attack=attack, clients=9, clients_per_round=9,
                               output=str(tmp_path)))
    for _ in range(4):
        today.step(), rounds.step()
    torch.testing.assert_close(rounds.model.get(), today.model.get(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name, shape", [("simples-digits", (1, 8, 8)), ("simples-conv", (1, 28, 28))])
@pytest.mark.parametrize("steps", [1, 3])
def test_vmap_and_loop_engines_give_the_same_local_updates(name, shape, steps):
    model = Model(name, Configuration(device="cpu"), init_seed=0)
    g = torch.Generator().manual_seed(steps)
    inputs, targets = torch.randn(4, steps, 6, *shape, generator=g), torch.randint(10, (4, steps, 6), generator=g)
    options = dict(lr=0.1, momentum=0.5, l2=1e-3, clip=3.0)
    before = model.get().clone()
    vmap = make_engine("vmap", model, F.cross_entropy).local_updates(inputs, targets, **options)
    loop = make_engine("loop", model, F.cross_entropy).local_updates(inputs, targets, **options)
    torch.testing.assert_close(vmap[0], loop[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(vmap[1], loop[1], atol=1e-6, rtol=1e-5)
    assert torch.equal(model.get(), before)  # the global parameters are left as they were
    if steps == 1:  # one plain step is -lr times the gradient
        plain = make_engine("vmap", model, F.cross_entropy).local_updates(inputs, targets, lr=0.1)[0]
        gradients = make_engine("vmap", model, F.cross_entropy).gradients(inputs[:, 0], targets[:, 0])[0]
        torch.testing.assert_close(plain, -0.1 * gradients, atol=1e-8, rtol=1e-5)


def test_the_number_of_byzantine_clients_per_round_is_hypergeometric():
    pool = ClientPool(Config(clients=30, clients_per_round=10, nb_decl_byz=6, aggregator="median"),
                      torch.Generator().manual_seed(0))
    draws = torch.tensor([pool.select().f for _ in range(4000)], dtype=torch.float64)
    n, b, m = 30, 6, 10
    mean, variance = m * b / n, m * (b / n) * (1 - b / n) * (n - m) / (n - 1)
    assert abs(draws.mean().item() - mean) < 0.05 and abs(draws.var().item() - variance) < 0.08
    chosen = pool.select()
    assert len(chosen.honest) + chosen.f == m and chosen.told_f == 6
    assert chosen.honest.max() < 24 and (chosen.byzantine < 6).all()


def test_rounds_record_the_byzantine_clients_they_selected_and_tell_the_rule(tmp_path):
    told = []
    sim = Simulation(Config(**BASE, clients=20, clients_per_round=7, known_f=True, aggregator="median",
                            attack="ipm", output=str(tmp_path)))
    rule = sim.aggregator.aggregate
    sim.aggregator.aggregate = lambda g, f: told.append((g.shape[0], f)) or rule(g, f)
    rows = [sim.step() for _ in range(6)]
    assert [n for n, _ in told] == [7] * 6
    assert [f for _, f in told] == [row["byzantine_selected"] for row in rows]
    result = run(Config(**BASE, clients=20, clients_per_round=7, aggregator="median", attack="ipm",
                        output=str(tmp_path / "run")), progress=False)
    assert all(0 <= row["byzantine_selected"] <= 2 for row in result.metrics)


def test_worker_momentum_is_per_client_and_waits_while_a_client_is_out(tmp_path):
    sim = Simulation(Config(**BASE, clients=12, clients_per_round=5, momentum=0.9, momentum_at="worker",
                            local_steps=2, aggregator="median", attack="signflip", output=str(tmp_path)))
    assert sim.momentum.buffer.shape[0] == 12
    before = sim.momentum.buffer.clone()
    chosen = sim.participants.select()
    sim.participants.generator.set_state(sim.participants.state_dict()["generator"])  # not consumed: replay it
    sim.participants = _replaying(sim.participants, chosen)
    sim.step()
    moved = (sim.momentum.buffer != before).any(dim=1).nonzero().flatten().tolist()
    assert moved == chosen.honest.tolist()  # signflip: no Byzantine client computes, so only honest rows move


def _replaying(pool, chosen):
    class Replay:
        def select(self):
            return chosen

        state_dict, load_state_dict = pool.state_dict, pool.load_state_dict
    return Replay()


def test_a_killed_federated_run_resumes_bit_identical(tmp_path, killed_at):
    config = Config(**{**BASE, "steps": 8}, clients=15, participation=0.5, local_steps=3, local_lr=0.05,
                    local_momentum=0.5, momentum=0.9, momentum_at="worker", server_opt="yogi(lr=0.01)",
                    aggregator="trmean", attack="labelflip", output=str(tmp_path / "a"))
    reference = run(config, progress=False)
    resumed_config = Config(**{**config.to_dict(), "output": str(tmp_path / "b")})
    killed_at(resumed_config, 5)
    assert torch.load(resumed_config.folder() / CHECKPOINT, weights_only=False)["t"] == 3
    resumed = run(resumed_config, progress=False)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "step_time"} for r in rows]  # noqa: E731
    assert strip(resumed.metrics) == strip(reference.metrics) and resumed.evaluations == reference.evaluations


def test_fedopt_adam_and_yogi_by_hand():
    g = torch.tensor([0.5, -2.0])
    adam = FedOpt("adam", [0.9, 0.99], 1e-3, 2, torch.device("cpu"), torch.float32)
    step = adam.update(g, lr=0.1)
    m, v = 0.1 * g, 0.99 * 1e-6 + 0.01 * g * g
    torch.testing.assert_close(step, 0.1 * m / (v.sqrt() + 1e-3))
    yogi = FedOpt("yogi", [0.9, 0.99], 1e-3, 2, torch.device("cpu"), torch.float32)
    yogi.update(g, lr=0.1)
    torch.testing.assert_close(yogi.v, 1e-6 - 0.01 * g * g * torch.sign(1e-6 - g * g))


def test_federated_rounds_learn(tmp_path):
    result = run(Config(dataset="digits", clients=20, clients_per_round=8, nb_decl_byz=2, local_steps=5, lr=0.05,
                        aggregator="nnm>cclip", attack="signflip", steps=40, eval_every=20,
                        output=str(tmp_path)), progress=False)
    assert result.final_accuracy > 0.8


@pytest.mark.parametrize("options, words", [
    (["--local-steps", "0"], "local_steps must be at least 1"),
    (["--clients", "10", "--clients-per-round", "11"], "clients_per_round must be in \\[1, clients\\]"),
    (["--clients", "20", "--clients-per-round", "6", "--nb-decl-byz", "2", "--aggregator", "krum"],
     "krum requires n >= 2f \\+ 3"),
    (["--clients", "5", "--nb-decl-byz", "1", "--nb-real-byz", "6"], "must be below clients"),
    (["--clients", "10", "--participation", "1.5"], "participation must be in \\(0, 1\\]"),
    (["--clients", "10", "--participation", "0"], "participation must be in \\(0, 1\\]"),
    (["--clients-per-round", "3"], "need a pool"),
    (["--server-opt", "adam", "--momentum", "0.9", "--momentum-at", "server"], "place momentum at the workers"),
])
def test_bad_federated_input_is_one_line_and_writes_nothing(tmp_path, capsys, options, words):
    assert main(["train", *options, "--output", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert pytest.importorskip("re").search(words, err), err
    assert not (tmp_path / "o").exists()


def test_metrics_show_the_rates_in_force(tmp_path):
    """--local-lr 0.05 --server-opt sgd(lr=0.01): lr 0.05 and server_lr 0.01, not the unused scheduled 0.1."""
    result = run(Config(dataset="digits", nb_workers=5, nb_decl_byz=1, steps=2, eval_every=2, lr=0.1, local_steps=2,
                        local_lr=0.05, server_opt="sgd(lr=0.01)", output=str(tmp_path)), progress=False)
    assert [(row["lr"], row["server_lr"]) for row in result.metrics] == [(0.05, 0.01)] * 2
    plain = run(Config(dataset="digits", nb_workers=5, nb_decl_byz=1, steps=1, eval_every=1, output=str(tmp_path)),
                progress=False)
    assert "server_lr" not in plain.metrics[0]  # one-gradient steps keep their columns
