"""Config: validation, serialisation, run ids; schedules; momentum placements; metrics."""
import json
import math

import pytest
import torch

from experiments.tools import UnavailableException, UserException
from simulator.core.config import Config
from simulator.core.metrics import step_metrics
from simulator.core.optim import Momentum
from simulator.core.schedules import SCHEDULES
from simulator.core.server import SERVER_OPTIMIZERS


def test_round_trip_through_json(tmp_path):
    config = Config(aggregator="krum", attack="alie(z=1.5)", lr_schedule="step(milestones=[10,20])")
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config.to_dict()))
    assert Config.load(path) == config


def test_run_id_is_stable_and_ignores_where_it_runs_but_not_the_engine():
    a = Config(aggregator="nnm>krum", seed=3)
    assert a.run_id() == Config(aggregator="nnm>krum", seed=3).run_id()
    assert a.run_id() == Config(aggregator="nnm>krum", seed=3, output="elsewhere", checkpoint_every=7).run_id()
    assert a.run_id() != Config(aggregator="nnm>krum", seed=3, engine="loop").run_id()
    assert a.run_id() != Config(aggregator="nnm>krum", seed=4).run_id()
    assert ">" not in a.run_id() and "/" not in a.run_id()


def test_real_byzantine_defaults_to_declared():
    assert Config(nb_decl_byz=3).real_byz == 3
    assert Config(nb_decl_byz=3, nb_real_byz=1).real_byz == 1
    assert Config(nb_workers=10, nb_decl_byz=3, nb_real_byz=1).nb_honest == 9


@pytest.mark.parametrize("changes, words", [
    ({"nb_workers": 5, "nb_decl_byz": 5}, "nb_decl_byz"),
    ({"nb_workers": 5, "nb_real_byz": 6}, "Byzantine"),
    ({"lr": -1.0}, "lr"),
    ({"momentum": 1.5}, "momentum"),
    ({"momentum_at": "client"}, "momentum_at"),
    ({"steps": 0}, "steps"),
    ({"heterogeneity": "gamma(iid_fraction=2.0)"}, "iid_fraction"),
    ({"lr_schedule": "step(milestones=[0])"}, "milestones"),
    ({"nesterov": True}, "nesterov"),
    ({"lr_schedule": "cosin"}, "cosine"),
])
def test_invalid_configurations_are_user_errors(changes, words):
    with pytest.raises(UserException, match=words):
        Config(**changes).validate()


def test_unknown_field_and_bad_file_are_user_errors(tmp_path):
    with pytest.raises(UserException, match="Unknown configuration field"):
        Config.from_dict({"nb_wrokers": 3})
    with pytest.raises(UserException, match="does not exist"):
        Config.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(UserException, match="not valid JSON"):
        Config.load(tmp_path / "bad.json")


def test_schedules():
    assert SCHEDULES.build("constant").rate(0.5, 1000, 300) == 0.5
    inverse = SCHEDULES.build("inverse(timescale=100, every=10)")
    assert inverse.rate(1.0, 0, 300) == 1.0
    assert inverse.rate(1.0, 109, 300) == pytest.approx(1.0 / 2.0)  # t rounded down to 100
    step = SCHEDULES.build("step(milestones=[20, 10], factor=0.1)")
    assert [step.rate(1.0, t, 300) for t in (9, 10, 19, 20)] == pytest.approx([1.0, 0.1, 0.1, 0.01])
    cosine = SCHEDULES.build("cosine(final_lr=0.1)")
    assert cosine.rate(1.0, 0, 100) == pytest.approx(1.0)
    assert cosine.rate(1.0, 50, 100) == pytest.approx(0.55)
    assert cosine.rate(1.0, 100, 100) == pytest.approx(0.1)
    with pytest.raises(UnavailableException, match="cosine"):
        Config(lr_schedule="cosin")
    with pytest.raises(UserException, match="final_lr must be at most lr"):
        Config(lr=0.1, lr_schedule="cosine(final_lr=0.5)").validate()


def _momentum(**kw):
    return Momentum(Config(nb_workers=3, nb_decl_byz=0, **kw), dim=2, device=torch.device("cpu"), dtype=torch.float64)


def test_no_momentum_is_plain_sgd():
    m = _momentum()
    g = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    assert torch.equal(m.at_workers(g, 0), g)
    assert torch.allclose(m.update(torch.tensor([1.0, 2.0], dtype=torch.float64), 0.5),
                          torch.tensor([0.5, 1.0], dtype=torch.float64))


def test_worker_momentum_keeps_one_buffer_per_worker():
    m = _momentum(momentum=0.5, momentum_at="worker")
    g = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert torch.equal(m.at_workers(g, 0), g)
    second = m.at_workers(g, 0)  # 0.5 * g + g
    assert torch.allclose(second, 1.5 * g)
    assert torch.equal(m.buffer[2], torch.zeros(2, dtype=torch.float64))  # worker 2 untouched
    # the server then applies lr * aggregate, no momentum of its own
    agg = torch.tensor([1.0, 1.0], dtype=torch.float64)
    assert torch.allclose(m.update(agg, 0.1), 0.1 * agg)


def test_aggregate_and_update_momentum_differ_only_when_lr_changes():
    server, update = _momentum(momentum=0.9, momentum_at="aggregate"), _momentum(momentum=0.9, momentum_at="update")
    g = torch.tensor([1.0, -1.0], dtype=torch.float64)
    for lr in (0.1, 0.1):
        assert torch.allclose(server.update(g, lr), update.update(g, lr))
    # lr drops: server momentum rescales the whole buffer, update momentum only the new term
    s, u = server.update(g, 0.01), update.update(g, 0.01)
    assert torch.allclose(s, 0.01 * (0.81 * g + 0.9 * g + g))
    assert torch.allclose(u, 0.81 * 0.1 * g + 0.9 * 0.1 * g + 0.01 * g)


def test_nesterov():
    m = _momentum(momentum=0.5, momentum_at="aggregate", nesterov=True)
    g = torch.tensor([1.0, 0.0], dtype=torch.float64)
    assert torch.allclose(m.update(g, 1.0), g + 0.5 * g)


def test_momentum_state_round_trip():
    m = _momentum(momentum=0.5, momentum_at="worker")
    m.at_workers(torch.ones(3, 2, dtype=torch.float64), 0)
    other = _momentum(momentum=0.5, momentum_at="worker")
    other.load_state_dict(m.state_dict())
    assert torch.equal(other.buffer, m.buffer)


def test_step_metrics_by_hand():
    honest = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    row = step_metrics(torch.tensor([0.5, 1.5]), honest, torch.tensor([0.0, 2.0]))
    assert row["train_loss"] == pytest.approx(1.0)
    assert row["honest_norm"] == pytest.approx(2.0)
    assert row["honest_variance"] == pytest.approx(1.0)
    assert row["variance_norm_ratio"] == pytest.approx(0.25)
    assert row["aggregate_distance"] == pytest.approx(math.sqrt(8))
    assert row["aggregate_cosine"] == pytest.approx(0.0)
    assert math.isnan(step_metrics(torch.zeros(2), honest, torch.tensor([float("nan"), 0.0]))["aggregate_cosine"])


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_starts_at_the_initial_rate_and_stays_positive(name):
    schedule = SCHEDULES.build(name)
    assert schedule.rate(0.3, 0, 100) == pytest.approx(0.3)
    assert all(0 <= schedule.rate(0.3, t, 100) <= 0.3 for t in range(0, 101, 10))


@pytest.mark.parametrize("name", SERVER_OPTIMIZERS.names())
def test_every_server_optimiser_leaves_the_parameters_still_on_a_zero_gradient_and_resumes(name):
    momentum = _momentum(momentum=0.5, momentum_at="update")
    stepper = SERVER_OPTIMIZERS.build(name).start(momentum, 2, torch.device("cpu"), torch.float64)
    assert torch.equal(stepper.update(torch.zeros(2, dtype=torch.float64), 0.1), torch.zeros(2, dtype=torch.float64))
    stepper.update(torch.ones(2, dtype=torch.float64), 0.1)
    state = stepper.state_dict()
    again = SERVER_OPTIMIZERS.build(name).start(_momentum(momentum=0.5, momentum_at="update"), 2,
                                                torch.device("cpu"), torch.float64)
    again.load_state_dict(state)
    g = torch.tensor([1.0, -2.0], dtype=torch.float64)
    if name == "sgd":  # its momentum lives in the run's Momentum, checkpointed beside it
        again.momentum.load_state_dict(momentum.state_dict())
    torch.testing.assert_close(again.update(g, 0.1), stepper.update(g, 0.1))


def test_a_mistyped_field_or_grid_key_suggests_the_close_one(tmp_path):
    from simulator.grid import load_grids

    with pytest.raises(UserException, match="Unknown configuration field.*nb_wrokers.*Did you mean 'nb_workers'"):
        Config.from_dict({"nb_wrokers": 3})
    (tmp_path / "g.toml").write_text('dataset = "digits"\nagregator = ["median"]\n')
    with pytest.raises(UserException, match="unknown key 'agregator'.*Did you mean 'aggregator'"):
        load_grids(tmp_path / "g.toml")
