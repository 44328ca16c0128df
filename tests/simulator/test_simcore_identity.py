"""Run identity: one id per distinct experiment, a new id for every change of the numbers."""
import dataclasses

import pytest
from hypothesis import given, settings, strategies as st

from simulator.core.config import Config
from simulator.core.identity import NEUTRAL_FIELDS


@pytest.mark.parametrize("a, b", [
    (dict(aggregator="krum"), dict(aggregator="Krum")),
    (dict(aggregator="cclip(tau=5)"), dict(aggregator="cclip(tau=5.0)")),
    (dict(aggregator="cclip(tau=5)"), dict(aggregator="cclip(tau=5.0)")),
    (dict(aggregator="cclip"), dict(aggregator="cclip(tau=10)")),
    (dict(aggregator="nnm>cclip(tau=5)"), dict(aggregator="NNM > cclip(tau=5.0)")),
    (dict(attack="alie(z=1.5)"), dict(attack="ALIE(z=1.50)")),
    (dict(attack="ipm"), dict(attack="ipm(epsilon=0.1)")),
    (dict(heterogeneity="dirichlet"), dict(heterogeneity="dirichlet(alpha=1)")),
    (dict(lr_schedule="inverse"), dict(lr_schedule="inverse(timescale=5000,every=1)")),
    (dict(lr_schedule="step(milestones=[20,10])"), dict(lr_schedule="step(milestones=[10, 20], factor=0.1)")),
    (dict(momentum=0.0, momentum_at="worker"), dict(momentum=0.0, momentum_at="server")),
    (dict(nb_decl_byz=2, nb_real_byz=None), dict(nb_decl_byz=2, nb_real_byz=2)),
    (dict(dataset="digits", model=None), dict(dataset="digits", model="simples-digits")),
    (dict(lr=1), dict(lr=1.0)),
    (dict(engine="vmap(chunk_size=none)"), dict(engine="vmap")),
    (dict(execution="torchrun(timeout=5)"), dict(execution="torchrun(timeout=600)")),
    (dict(server_opt="sgd(lr=1)", local_steps=2), dict(server_opt="sgd", local_steps=2)),
    (dict(device="cpu"), dict(device="cpu:0")),
    (dict(output="a", checkpoint_every=5, data_root="/x"), dict(output="b", checkpoint_every=50)),
    (dict(local_steps=3, local_lr=0.05, lr=0.1), dict(local_steps=3, local_lr=0.05, lr=0.2, lr_schedule="cosine")),
])
def test_each_pair_names_one_experiment(a, b):
    assert Config(**a).run_id() == Config(**b).run_id()


@pytest.mark.parametrize("a, b", [
    (dict(engine="vmap"), dict(engine="loop")),
    (dict(engine="vmap(chunk_size=2)"), dict(engine="vmap")),
    (dict(heterogeneity="dirichlet(alpha=0.3)"), dict(heterogeneity="dirichlet(alpha=3.0)")),
    (dict(lr_schedule="step(milestones=[10])"), dict(lr_schedule="step(milestones=[20])")),
    (dict(execution="torchrun"), dict(execution="torchrun(byzantine=ranks)")),
    (dict(momentum=0.9, momentum_at="worker"), dict(momentum=0.9, momentum_at="server")),
    (dict(aggregator="cclip(tau=5)"), dict(aggregator="cclip(tau=6)")),
    (dict(attack="alie(z=1.5)"), dict(attack="alie(z=-1.5)")),
    (dict(local_steps=3, lr=0.1), dict(local_steps=3, lr=0.2)),  # without a local_lr the clients use lr
])
def test_what_changes_the_numbers_changes_the_id(a, b):
    assert Config(**a).run_id() != Config(**b).run_id()


# One different, valid value per field whose change alters a run's numbers.
CHANGES = {
    "dataset": "mnist", "model": "simples-full", "loss": "nll",
    "criterion": "top-k(k=2)", "nb_workers": 12, "nb_decl_byz": 1, "nb_real_byz": 1,
    "aggregator": "cclip(tau=5.0)", "attack": "ipm(epsilon=0.5)", "batch_size": 16, "test_batch_size": 512,
    "steps": 301, "lr": 0.2, "lr_schedule": "step(milestones=[50],factor=0.5)", "momentum": 0.9, "weight_decay": 1e-4,
    "l2": 1e-4, "clip": 2.0, "heterogeneity": "gamma(iid_fraction=0.1)", "eval_every": 25, "seed": 2,
    "device": "cuda", "engine": "vmap(chunk_size=3)", "execution": "torchrun(byzantine=ranks)",
    "validation_split": 0.2, "local_steps": 3, "local_lr": 0.05, "local_momentum": 0.5, "local_batches": "same",
    "clients": 30, "known_f": True, "server_opt": "yogi(beta1=0.8,beta2=0.9,tau=0.01)", "topology": "ring",
    "privacy": "dpsgd(sigma=2.0)",
}
# Fields read only under another setting, with the base config that activates them.
MODE_CHANGES = {
    "momentum_at": (dict(momentum=0.9), "worker"), "dampening": (dict(momentum=0.9), 0.5),
    "nesterov": (dict(momentum=0.9), True), "clients_per_round": (dict(clients=30), 12),
    "participation": (dict(clients=30), 0.5), "eval_nodes": (dict(topology="ring"), 3),
}
BASES = {}


def test_every_field_is_either_neutral_or_covered_by_the_property_test():
    names = {f.name for f in dataclasses.fields(Config)}
    assert names == set(NEUTRAL_FIELDS) | set(CHANGES) | set(MODE_CHANGES)


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(sorted(CHANGES) + sorted(MODE_CHANGES)), seed=st.integers(1, 5),
       workers=st.integers(15, 20))
def test_changing_any_result_changing_field_gives_a_new_id(field, seed, workers):
    base = dict(seed=seed, nb_workers=workers, nb_decl_byz=2, **BASES.get(field, {}))
    if field in MODE_CHANGES:
        activate, value = MODE_CHANGES[field]
        base.update(activate)
    else:
        value = CHANGES[field]
    changed = {**base, field: value}
    if base.get(field) == value:  # the random base already holds this value: change it the other way
        changed[field] = value + 1
    assert Config(**base).run_id() != Config(**changed).run_id()


@settings(max_examples=30, deadline=None)
@given(field=st.sampled_from(NEUTRAL_FIELDS), seed=st.integers(1, 5))
def test_changing_a_neutral_field_keeps_the_id(field, seed):
    value = {"output": "elsewhere", "data_root": "/data", "checkpoint_every": 7}[field]
    assert Config(seed=seed).run_id() == Config(seed=seed, **{field: value}).run_id()


@pytest.mark.parametrize("spec", ["heterogeneity", "lr_schedule", "server_opt", "engine", "execution"])
def test_a_spec_field_hashes_its_canonical_form_with_every_parameter(spec):
    config = Config()
    part = config.parts[spec]
    assert config.identity().get(spec, part.identity) == part.identity
    assert all(f"{name}=" in part.identity for name in part.parameters() if name not in part.neutral)
