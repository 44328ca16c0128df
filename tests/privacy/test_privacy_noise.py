"""The noise: with zero gradients, what the honest workers send (DP-SGD) or the server applies (DP-FedAvg) is
Gaussian with the configured standard deviation (fixed seeds: the checks are deterministic)."""
import torch

from simulator.core.simulation import Simulation


class Recording:
    """The run's rule, recording the vectors it is given."""

    def __init__(self, rule):
        self.rule, self.seen = rule, []

    def __call__(self, vectors, f):
        self.seen.append(vectors.clone())
        return self.rule(vectors, f)

    def __getattr__(self, name):
        return getattr(self.rule, name)


def zero_gradients(sim):
    """Every honest worker's clipped per-sample sum is zero (a frozen model with a zero loss, in effect)."""
    def clipped(inputs, targets, *, clip, at=None):
        return torch.zeros(inputs.shape[0], sim.engine.dimension), torch.zeros(inputs.shape[0])
    sim.engine.clipped_gradients = clipped


def test_dp_sgd_workers_send_noise_of_std_sigma_clip_over_b(small):
    sim = Simulation(small(privacy="dpsgd(clip=0.5,sigma=2.0)", nb_decl_byz=0, batch_size=16))
    zero_gradients(sim)
    sim.aggregator = Recording(sim.aggregator)
    for _ in range(3):
        sim.step()
    sent = torch.cat(sim.aggregator.seen)  # [3 h, d]: honest vectors only (no attacker)
    assert sent.numel() > 80_000
    assert abs(sent.mean().item()) < 3 * 2.0 * 0.5 / 16 / sent.numel() ** 0.5
    assert abs(sent.std().item() / (2.0 * 0.5 / 16) - 1) < 0.02
    assert not torch.equal(sim.aggregator.seen[0], sim.aggregator.seen[1])  # fresh noise at every step


def test_the_attack_sees_the_noisy_vectors_or_the_clean_ones(small):
    for view, expect_zero in (("noisy", False), ("clean", True)):
        sim = Simulation(small(privacy=f"dpsgd(attack_sees={view})", attack="alie"))
        zero_gradients(sim)
        honest = []
        send = sim.attack.send
        sim.attack.send = lambda seen, f, ctx: honest.append(seen.clone()) or send(seen, f, ctx)
        sim.aggregator = Recording(sim.aggregator)
        sim.step()
        assert torch.equal(honest[0], torch.zeros_like(honest[0])) is expect_zero
        assert sim.aggregator.seen[0][:6].abs().sum() > 0  # the server always receives the noisy vectors


def test_dp_fedavg_adds_noise_of_std_sigma_clip_over_m_to_the_aggregate(small):
    sim = Simulation(small(privacy="dpfedavg(clip=0.3,sigma=1.5,delta=1e-3)", nb_decl_byz=0, nb_workers=6))
    sim.engine.gradients = lambda inputs, targets, **_: (torch.zeros(inputs.shape[0], sim.engine.dimension),
                                                         torch.zeros(inputs.shape[0]))
    applied = []
    sim.momentum.keep = lambda aggregate: applied.append(aggregate.clone())
    for _ in range(8):
        sim.step()
    noise = torch.cat(applied)
    assert abs(noise.std().item() / (1.5 * 0.3 / 6) - 1) < 0.02
    assert abs(noise.mean().item()) < 3 * 1.5 * 0.3 / 6 / noise.numel() ** 0.5


def test_dp_fedavg_clips_every_honest_update_and_no_byzantine_one(small):
    sim = Simulation(small(privacy="dpfedavg(clip=0.01,delta=1e-3)", attack="ipm(epsilon=100)"))
    sim.aggregator = Recording(sim.aggregator)
    sim.step()
    norms = sim.aggregator.seen[0].norm(dim=1)
    assert torch.allclose(norms[:6], torch.full((6,), 0.01), rtol=1e-4)  # the honest gradients are far larger
    assert norms[6] > 0.1
