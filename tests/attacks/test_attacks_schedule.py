"""Every attack's schedule (begin, end, every): which steps attack, honest vectors otherwise, unchanged run ids."""
import pytest
import torch

import attacks
from attacks.base import SCHEDULE, AttackContext
from simulator import Config


@pytest.mark.parametrize("spec, attacked", [
    ("ipm", list(range(12))),
    ("ipm(begin=3)", list(range(3, 12))),
    ("ipm(begin=3,end=10,every=2)", [3, 5, 7, 9]),
    ("ipm(begin=4,end=5)", [4]),  # a single shot
    ("ipm(every=5)", [0, 5, 10]),  # FLPoison's fixed frequency
])
def test_the_schedule_says_which_steps_attack(spec, attacked):
    attack = attacks.get(spec)
    assert [t for t in range(12) if attack.attacks_at(t)] == attacked
    assert attack.last_attacked(12) == attacked[-1]


def test_the_last_attacked_step_is_none_when_the_schedule_never_starts_within_the_run():
    assert attacks.get("alie(begin=30)").last_attacked(30) is None
    assert attacks.get("alie(begin=29,every=7)").last_attacked(30) == 29
    assert attacks.get("alie(begin=2,end=100,every=7)").last_attacked(20) == 16


def test_off_schedule_the_byzantine_workers_send_their_own_honest_vectors():
    honest, own = torch.randn(4, 3), torch.randn(2, 3)
    attack = attacks.get("ipm(epsilon=10,begin=2,end=3)")

    def context(step):
        return AttackContext(nb_workers=6, decl_f=2, aggregator=None, generator=torch.Generator(),
                             vectors=lambda poison, momentum: own.clone(), step=step)

    assert torch.equal(attack.send(honest, 2, context(1)), own)
    assert torch.equal(attack.send(honest, 2, context(2)), -10 * honest.mean(dim=0).expand(2, 3))
    assert torch.equal(attack.send(honest, 2, context(3)), own)
    assert attack.send(honest, 0, context(0)).shape == (0, 3)


def test_every_attack_but_none_takes_the_schedule_as_added_parameters():
    for name in attacks.names():
        cls = attacks.base.REGISTRY.get(name)
        declared = set(SCHEDULE) & set(cls.parameters())
        assert declared == (set() if name == "none" else set(SCHEDULE)), name
        assert set(SCHEDULE) <= set(cls.added) or name == "none"


def test_existing_run_ids_stay_and_a_schedule_changes_them():
    assert attacks.get("alie").identity == "alie(z=none)"
    assert attacks.get("alie(z=1.5)").identity == "alie(z=1.5)"
    assert attacks.get("alie(begin=0,every=1)").identity == "alie(z=none)"  # the defaults: the same run
    assert Config(attack="alie(z=1.5)").run_id() == Config(attack="alie(z=1.5,begin=0,end=none)").run_id()
    assert Config(attack="alie(z=1.5)").run_id() != Config(attack="alie(z=1.5,begin=3)").run_id()
    assert attacks.get("ipm(begin=3)").identity == "ipm(epsilon=0.1,begin=3)"


def test_a_subclass_adding_its_own_parameters_keeps_the_schedule_added():
    class Later(attacks.base.GradientAttack):
        added = ("scale",)
        scale: float = 1.0

    assert Later.added == (*SCHEDULE, "scale")
