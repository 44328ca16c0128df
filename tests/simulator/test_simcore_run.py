"""Whole runs on the embedded digits dataset: learning, robustness, engines,
determinism, resume, momentum placements and the Python API."""
import pytest
import torch

from experiments.tools import UserException
from simulator import Config, load_result, run
from simulator.core.provenance import machine
from simulator.core.simulation import Simulation
from simulator.core.store import CHECKPOINT, CONFIG, EVALS, METRICS, SUMMARY


def _without_time(rows):
    return [{k: v for k, v in row.items() if k != "step_time"} for row in rows]


def _params(result):
    return torch.load(result.folder / CHECKPOINT, weights_only=False)["module"]


def test_a_short_run_learns_and_writes_its_files(small):
    result = run(small(nb_decl_byz=0, steps=150, eval_every=50), progress=False)
    assert result.summary["final_accuracy"] > 0.8  # chance is 0.1
    assert [e["step"] for e in result.evaluations] == [0, 50, 100, 150]
    assert len(result.metrics) == 150 and result.metrics[0]["step"] == 0
    for name in (CONFIG, METRICS, EVALS, SUMMARY, CHECKPOINT):
        assert (result.folder / name).exists()
    assert load_result(result.folder).summary == result.summary
    assert set(result.summary["versions"]) == {"byzsim", "torch", "python"}
    assert result.summary["machine"] == machine() and "CPU cores" in machine()
    assert result.summary["torch_threads"] == torch.get_num_threads()


def test_average_collapses_where_median_and_krum_survive(small):
    attack = dict(nb_workers=11, nb_decl_byz=3, attack="ipm(epsilon=10)", steps=120, eval_every=60)
    accuracy = {agg: run(small(aggregator=agg, **attack), progress=False).final_accuracy
                for agg in ("average", "median", "krum")}
    assert accuracy["average"] < 0.3
    assert accuracy["median"] > 0.7 and accuracy["krum"] > 0.7


def test_same_config_same_seed_is_bit_identical(small, tmp_path):
    config = small(aggregator="bucketing(s=2)>cclip", attack="alie", momentum=0.9, momentum_at="worker")
    a = run(config, progress=False)
    b = run(Config(**{**config.to_dict(), "output": str(tmp_path / "again")}), progress=False)
    assert _without_time(a.metrics) == _without_time(b.metrics)
    assert a.evaluations == b.evaluations
    assert all(torch.equal(_params(a)[k], _params(b)[k]) for k in _params(a))
    c = run(Config(**{**config.to_dict(), "seed": 8}), progress=False)
    assert _without_time(c.metrics) != _without_time(a.metrics)


def test_vmap_and_loop_engines_train_the_same_model(small, tmp_path):
    vmap = run(small(engine="vmap", aggregator="median", attack="signflip", steps=20), progress=False)
    loop = run(small(engine="loop", aggregator="median", attack="signflip", steps=20,
                     output=str(tmp_path / "loop")), progress=False)
    assert vmap.summary["engine"] == "vmap" and loop.summary["engine"] == "loop"
    for key, value in _params(vmap).items():
        assert torch.allclose(value, _params(loop)[key], atol=1e-4), key


@pytest.mark.parametrize("aggregator, attack", [("bucketing(s=2)>cclip", "alie"), ("krum", "labelflip")])
def test_a_killed_run_resumes_to_the_same_result(small, tmp_path, killed_at, aggregator, attack):
    config = small(aggregator=aggregator, attack=attack, momentum=0.9, momentum_at="worker", steps=40)
    reference = run(Config(**{**config.to_dict(), "output": str(tmp_path / "reference")}), progress=False)
    killed_at(config, 25)
    assert not (config.folder() / SUMMARY).exists()
    assert torch.load(config.folder() / CHECKPOINT, weights_only=False)["t"] == 20
    resumed = run(config, progress=False)
    assert _without_time(resumed.metrics) == _without_time(reference.metrics)
    assert resumed.evaluations == reference.evaluations
    assert all(torch.equal(_params(resumed)[k], _params(reference)[k]) for k in _params(reference))


def test_a_checkpoint_never_resumes_under_another_engine(small):
    """`auto` may resolve differently on another machine or torch: the checkpoint's engine must match."""
    config = small(engine="auto", steps=5)
    state = Simulation(config).state_dict()
    assert state["engine_name"] == "vmap"
    state["engine_name"] = "loop"
    with pytest.raises(UserException, match="never resumes under another engine"):
        Simulation(config).load_state_dict(state)


def test_a_finished_run_is_not_run_again(small, monkeypatch):
    config = small(steps=5)
    first = run(config, progress=False)
    monkeypatch.setattr(Simulation, "__init__", lambda *a: pytest.fail("ran again"))
    assert run(config, progress=False).summary == first.summary


@pytest.mark.parametrize("placement", ["worker", "server", "update"])
def test_every_momentum_placement_learns(small, placement):
    result = run(small(nb_decl_byz=0, momentum=0.9, momentum_at=placement, lr=0.05, steps=100, eval_every=50),
                 progress=False)
    assert result.final_accuracy > 0.8


def test_server_and_update_momentum_agree_at_constant_lr_and_differ_under_decay(small, tmp_path):
    def final(placement, schedule, where):
        return _params(run(small(nb_decl_byz=0, momentum=0.9, momentum_at=placement, lr_schedule=schedule,
                                 steps=15, output=str(tmp_path / where)), progress=False))
    same = final("server", "constant", "a"), final("update", "constant", "b")
    assert all(torch.allclose(same[0][k], same[1][k], atol=1e-5) for k in same[0])
    decayed = final("server", "inverse(timescale=5)", "c"), final("update", "inverse(timescale=5)", "d")
    assert any(not torch.allclose(decayed[0][k], decayed[1][k], atol=1e-5) for k in decayed[0])


def test_declared_and_real_f_are_separate(small, monkeypatch):
    sim = Simulation(small(nb_workers=9, nb_decl_byz=3, nb_real_byz=1, aggregator="krum", attack="signflip"))
    told = []
    rule = sim.aggregator.aggregate
    monkeypatch.setattr(sim.aggregator, "aggregate", lambda g, f: told.append((g.shape[0], f)) or rule(g, f))
    sim.step()
    assert sim.config.nb_honest == 8 and len(sim.sampler.parts) == 8
    assert told == [(9, 3)]  # 8 honest + 1 real attacker, the rule told the declared 3
    honest_only = Simulation(small(nb_workers=9, nb_decl_byz=2, nb_real_byz=0, aggregator="median", attack="alie"))
    monkeypatch.setattr(honest_only.attack, "forge", lambda *a: pytest.fail("the attack was called"))
    row = honest_only.step()
    assert len(honest_only.sampler.parts) == 9 and honest_only.byzantine_sampler is None
    assert row["aggregate_distance"] < row["honest_norm"]  # the median of 9 honest vectors, near their mean


def test_every_heterogeneity_mode_runs_and_learns(small):
    results = {mode: run(small(nb_decl_byz=0, heterogeneity=mode, steps=60, eval_every=60), progress=False)
               for mode in ("iid", "dirichlet(alpha=0.5)", "extreme", "gamma(iid_fraction=0.5)")}
    for mode, result in results.items():
        assert result.final_accuracy > 0.5, mode  # chance is 0.1; every class is held by some honest worker
    classes = {mode: r.summary["data"]["classes_per_honest_worker"]["median"] for mode, r in results.items()}
    assert classes["iid"] == 10 and classes["extreme"] <= 2 < classes["gamma(iid_fraction=0.5)"]


def test_the_criterion_is_configurable(small, tmp_path):
    top1 = run(small(nb_decl_byz=0, steps=5, eval_every=5), progress=False)
    top5 = run(small(nb_decl_byz=0, steps=5, eval_every=5, criterion="top-k(k=5)"), progress=False)
    assert top5.final_accuracy > top1.final_accuracy


def test_l2_and_clipping_change_the_vectors(small):
    plain = Simulation(small(nb_decl_byz=0))
    clipped = Simulation(small(nb_decl_byz=0, clip=1e-3))
    for sim in (plain, clipped):
        sim.step()
    assert clipped.metrics[0]["honest_norm"] <= 1e-3 + 1e-9 < plain.metrics[0]["honest_norm"]
    regularised = Simulation(small(nb_decl_byz=0, l2=10.0))
    regularised.step()
    assert regularised.metrics[0]["honest_norm"] > plain.metrics[0]["honest_norm"]


def test_the_probe_leaves_a_stateful_attack_as_it_was(small):
    import attacks

    fresh = attacks.get("mimic", heuristic="variance").state_dict()
    sim = Simulation(small(attack="mimic(heuristic=variance)"))
    assert repr(sim.attack.state_dict()) == repr(fresh)


def test_a_validation_split_is_held_out_and_evaluated(small):
    sim = Simulation(small(validation_split=0.2))
    plain = Simulation(small())
    held = len(sim.validation[1])
    assert held == int(0.2 * len(plain.sampler.targets))
    assert len(sim.sampler.targets) + held == len(plain.sampler.targets)
    result = run(small(validation_split=0.2, nb_decl_byz=0, steps=40, eval_every=20), progress=False)
    assert [e["step"] for e in result.evaluations] == [0, 20, 40]
    assert all(0 <= e["val_accuracy"] <= 1 for e in result.evaluations)
    assert result.summary["best_val_accuracy"] == max(e["val_accuracy"] for e in result.evaluations) > 0.5
    assert "val_accuracy" not in run(small(steps=2, eval_every=2), progress=False).summary


def test_load_runs_gives_one_row_per_finished_run_with_missing_values_as_none(small, tmp_path):
    from simulator import load_runs

    for seed in (1, 2):
        run(small(seed=seed, steps=10, eval_every=10), progress=False)
    (tmp_path / "runs" / "unfinished").mkdir()
    rows = load_runs(tmp_path / "runs")
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else rows  # a DataFrame when pandas is there
    assert sorted(r["seed"] for r in rows) == [1, 2]
    assert all(r["run_id"] and r["aggregator"] == "average" and 0 <= r["final_accuracy"] <= 1 for r in rows)
    folder = small(seed=1, steps=10, eval_every=10).folder()
    assert load_result(folder).evaluations[0]["val_accuracy"] is None  # no validation set: None, not ""
