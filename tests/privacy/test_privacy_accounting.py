"""Accounting: every epsilon byzsim records is Opacus's own for the run's (q, sigma, steps, delta)."""
import pytest
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from simulator import run
from simulator.core.privacy.accounting import Accountant
from simulator.core.privacy.dpfedavg import update_noise
from simulator.core.simulation import Simulation

OPACUS = {"rdp": RDPAccountant, "prv": PRVAccountant}


def opacus_epsilon(accountant: str, sigma: float, q: float, steps: int, delta: float) -> float:
    """Opacus's accountant stepped as a DP-SGD optimiser steps it."""
    reference = OPACUS[accountant]()
    for _ in range(steps):
        reference.step(noise_multiplier=sigma, sample_rate=q)
    return reference.get_epsilon(delta=delta) if steps else 0.0


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_every_evaluation_records_opacus_epsilon(small, accountant):
    config = small(privacy=f"dpsgd(sigma=1.3,accountant={accountant})", steps=8)
    q = config.batch_size / Simulation(config).data["samples_per_honest_worker"]["min"]  # the smallest partition
    result = run(config, progress=False)
    for row in result.evaluations:
        assert row["epsilon"] == opacus_epsilon(accountant, 1.3, q, row["step"], 1e-5)
    assert result.summary["epsilon"] == result.evaluations[-1]["epsilon"] > 0
    assert result.summary["privacy"]["sample_rate"] == q


def test_federated_dp_sgd_counts_every_local_step_of_every_round(small):
    config = small(privacy="dpsgd(accountant=rdp)", clients=10, participation=0.5, local_steps=3, steps=4)
    q = config.batch_size / Simulation(config).data["samples_per_honest_worker"]["min"]
    assert run(config, progress=False).summary["epsilon"] == opacus_epsilon("rdp", 1.0, q, 3 * 4, 1e-5)


def test_dp_fedavg_samples_clients_from_the_pool(small):
    config = small(privacy="dpfedavg(delta=1e-3,accountant=rdp)", clients=20, clients_per_round=5, local_steps=2,
                   steps=6)
    assert run(config, progress=False).summary["epsilon"] == opacus_epsilon("rdp", 1.0, 5 / 20, 6, 1e-3)


@pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha")
def test_a_target_epsilon_calibrates_sigma_with_opacus_before_the_run(small):
    config = small(privacy="dpsgd(epsilon=4,accountant=rdp)", steps=8)
    q = config.batch_size / Simulation(config).data["samples_per_honest_worker"]["min"]
    result = run(config, progress=False)
    sigma = get_noise_multiplier(target_epsilon=4, target_delta=1e-5, sample_rate=q, steps=8, accountant="rdp")
    assert result.summary["privacy"]["noise_multiplier"] == sigma
    assert 4 - 0.01 <= result.summary["epsilon"] <= 4  # Opacus's tolerance, from below


def test_the_accountants_state_restores_its_history():
    first = Accountant("rdp", 0.8, 0.05, 1e-5)
    first.step(7)
    second = Accountant("rdp", 0.8, 0.05, 1e-5)
    second.load_state_dict(first.state_dict())
    second.step(3)
    assert second.epsilon() == opacus_epsilon("rdp", 0.8, 0.05, 10, 1e-5)
    assert Accountant("prv", 0.8, 0.05, 1e-5).epsilon() == 0.0  # nothing spent before the first step


def test_adaptive_clipping_splits_the_noise_multiplier_as_andrew_et_al():
    """Theorem 1: the update's and the count's noise are one mechanism of z = (s^-2 + (2 c)^-2)^-1/2."""
    z, count = 1.0, 1.5
    update = update_noise(z, count)
    assert (update ** -2 + (2 * count) ** -2) ** -0.5 == pytest.approx(z)
    assert update > z
    assert update_noise(4.0, 1.5) == float("inf")  # the count alone spends more than z allows
