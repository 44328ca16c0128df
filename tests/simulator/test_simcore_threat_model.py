"""The experiment around the rules: who holds the data, whose dice the attacker rolls."""
import pytest
import torch

import aggregators
import attacks
from simulator import Config, run
from simulator.core.simulation import Simulation


def _honest_indices(sim: Simulation) -> torch.Tensor:
    return torch.cat(sim.sampler.parts).sort().values


@pytest.mark.parametrize("mode", ["extreme", "gamma(iid_fraction=0.3)", "dirichlet(alpha=0.3)", "iid"])
def test_the_honest_workers_together_hold_every_sample_of_every_class(small, mode):
    sim = Simulation(small(nb_workers=11, nb_decl_byz=2, heterogeneity=mode))
    assert len(sim.sampler.parts) == 9
    labels = sim.sampler.targets.cpu()
    assert torch.equal(_honest_indices(sim), torch.arange(len(labels)))  # every sample, once
    assert sim.data["class_share_held_by_honest"] == [1.0] * 10
    assert sim.data["honest_workers"] == 9


def test_extreme_split_gives_the_last_honest_worker_the_last_class(small):
    sim = Simulation(small(nb_workers=11, nb_decl_byz=2, heterogeneity="extreme"))
    labels = sim.sampler.targets.cpu()
    assert 9 in labels[sim.sampler.parts[-1]].tolist()  # before, class 9 went to the Byzantine workers
    assert sim.data["classes_per_honest_worker"]["max"] <= 3


def test_declared_but_honest_workers_are_honest_and_get_a_share(small):
    sim = Simulation(small(nb_workers=11, nb_decl_byz=3, nb_real_byz=1, heterogeneity="extreme"))
    assert len(sim.sampler.parts) == 10
    assert torch.equal(_honest_indices(sim), torch.arange(len(sim.sampler.targets)))


def test_byzantine_workers_draw_iid_from_the_whole_training_set(small):
    sim = Simulation(small(nb_workers=11, nb_decl_byz=2, heterogeneity="extreme", attack="labelflip"))
    everything = torch.arange(len(sim.sampler.targets))
    assert len(sim.byzantine_sampler.parts) == 2
    assert all(torch.equal(part, everything) for part in sim.byzantine_sampler.parts)
    _, targets = sim.byzantine_sampler.sample()
    assert len(targets.unique()) > 3  # an iid batch, unlike any honest worker's under `extreme`
    assert Simulation(small(nb_decl_byz=0)).byzantine_sampler is None


def test_the_summary_records_what_the_honest_workers_saw(small):
    result = run(small(nb_workers=11, nb_decl_byz=2, heterogeneity="extreme", steps=2, eval_every=2),
                 progress=False)
    data = result.summary["data"]
    assert data["honest_workers"] == 9
    assert set(data["classes_per_honest_worker"]) == {"min", "median", "max"}
    assert data["class_share_held_by_honest"] == [1.0] * 10


def test_the_servers_draws_are_the_same_with_and_without_the_attackers_line_search(small):
    config = dict(aggregator="bucketing(s=2)>median", nb_workers=11, nb_decl_byz=2)
    searched, fixed = Simulation(small(attack="opt-alie(evals=6)", **config)), Simulation(small(attack="alie", **config))
    for sim in (searched, fixed):
        sim.step()
    assert torch.equal(searched.aggregator.generators()[0].get_state(), fixed.aggregator.generators()[0].get_state())


def test_a_randomised_defence_is_attacked_without_its_draws_by_default(small, monkeypatch):
    """The permutations the line search tried are not the one the server used, unless the attacker knows it."""
    seen, original = [], torch.randperm
    monkeypatch.setattr(torch, "randperm", lambda *a, **k: seen.append(original(*a, **k)) or seen[-1])
    for knows in (False, True):
        sim = Simulation(small(aggregator="bucketing(s=2)>median", nb_workers=11, nb_decl_byz=2,
                               attack=f"opt-alie(evals=4,knows_server_rng={str(knows).lower()})"))
        seen.clear()
        sim.step()
        *tried, real = [p for p in seen if len(p) == 11]
        assert len(tried) == 4
        assert all(torch.equal(p, real) for p in tried) == knows


# ------------------------------------------------------------ conventions
HONEST = torch.tensor([[1.0, 2.0], [3.0, 2.0], [5.0, 8.0]], dtype=torch.float64)


def _ctx(generator=None):
    return attacks.AttackContext(nb_workers=5, decl_f=2, aggregator=None, generator=generator)


def test_alie_with_a_negative_z_adds_the_std_as_byzfl_does():
    plus = attacks.get("alie(z=-1.5)")(HONEST, 2, _ctx())
    mean, std = HONEST.mean(dim=0), HONEST.std(dim=0)
    assert torch.allclose(plus, (mean + 1.5 * std).expand(2, 2))


def test_opt_alie_can_search_on_the_plus_side():
    honest = torch.randn(20, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    chain = aggregators.get("average")
    ctx = attacks.AttackContext(nb_workers=25, decl_f=5, aggregator=chain, generator=torch.Generator())
    out = attacks.get("opt-alie(sign=1,evals=4)")(honest, 5, ctx)
    assert ((out[0] - honest.mean(dim=0)) >= 0).all()
    with pytest.raises(Exception, match="sign"):
        attacks.get("opt-alie(sign=2)")


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_mimic_finds_the_same_direction_whatever_the_gradients_scale(scale):
    g = torch.Generator().manual_seed(1)
    clouds = [torch.randn(12, 40, generator=g, dtype=torch.float64) * torch.linspace(0.1, 3, 40, dtype=torch.float64)
              for _ in range(5)]
    attack = attacks.get("mimic(heuristic=variance,warmup=5)")
    for cloud in clouds:
        attack(cloud * scale, 2, _ctx())
    reference = attacks.get("mimic(heuristic=variance,warmup=5)")
    for cloud in clouds:
        reference(cloud, 2, _ctx())
    torch.testing.assert_close(attack.state_dict()["direction"], reference.state_dict()["direction"])
    assert attack.state_dict()["target"] == reference.state_dict()["target"]


def test_gaussian_sends_independent_vectors_or_one_shared_vector():
    honest = torch.zeros(4, 6)
    independent = attacks.get("gaussian")(honest, 3, _ctx(torch.Generator().manual_seed(0)))
    shared = attacks.get("gaussian(shared=true)")(honest, 3, _ctx(torch.Generator().manual_seed(0)))
    assert not torch.equal(independent[0], independent[1])
    assert torch.equal(shared[0], shared[1]) and torch.equal(shared[1], shared[2])


def test_krum_neighbour_count_and_plain_distances():
    x = torch.tensor([[0.0], [1.0], [3.0], [10.0], [10.5]])  # n = 5, f = 1
    # n-f-2 = 2 squared neighbours: scores 10, 5, 13, 49.25, 56.5; n-f-1 = 3: 110, 86, 62, 130.25, 146.75
    assert aggregators.get("krum")(x, 1).item() == 1.0
    assert aggregators.get("krum(neighbours=n-f-1)")(x, 1).item() == 3.0
    assert aggregators.get("krum(neighbours=n-f-1)").spec == "krum(neighbours=n-f-1)"
    assert aggregators.get("krum").unmet(5, 2) == "n >= 2f + 3"
    assert aggregators.get("krum(neighbours=n-f-1)").unmet(5, 2) is None  # 2f < n suffices, as in ByzFL
    line = torch.tensor([[0.0], [2.0], [3.0], [4.0], [9.0]])
    # 3 plain neighbours: 9, 5, 5, 7, 18, the tie broken by a 4th (12 vs 11); squared: 29, 9, 11, 21, ...
    assert aggregators.get("multikrum(neighbours=n-f-1,squared=false,m=1)")(line, 1).item() == 3.0
    assert aggregators.get("multikrum(neighbours=n-f-1,m=1)")(line, 1).item() == 2.0


def test_geomed_from_zero_with_a_fixed_iteration_count_is_byzfls():
    x = torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])
    out = aggregators.get("geomed(nu=0.1,max_iter=3,tol=0,start=zero)")(x, 0)
    torch.testing.assert_close(out, torch.tensor([3.7879, 4.7879, 5.7879]), atol=1e-4, rtol=0)  # ByzFL's own example
    torch.testing.assert_close(aggregators.get("geomed")(x, 0), torch.tensor([4.0, 5.0, 6.0]))


def test_canonical_specs_and_run_ids_reach_through_the_new_knobs(small):
    assert Config(attack="alie(z=-1.5)").attack == "alie(z=-1.5)"
    assert small(aggregator="krum(neighbours=n-f-1)").run_id() != small(aggregator="krum").run_id()


def test_byzantine_workers_may_send_raw_gradients_without_worker_momentum(small):
    sims = {flag: Simulation(small(attack=f"labelflip(momentum={flag})", momentum=0.9, momentum_at="worker"))
            for flag in ("true", "false")}
    for sim in sims.values():
        sim.step()
    h = sims["true"].config.nb_honest
    assert sims["true"].momentum.buffer[h:].abs().sum() > 0
    assert sims["false"].momentum.buffer[h:].abs().sum() == 0  # their rows never entered momentum
    assert attacks.get("bitflip(momentum=false)").spec == "bitflip(momentum=false)"
    with pytest.raises(Exception, match="no parameter"):
        attacks.get("none(momentum=false)")
