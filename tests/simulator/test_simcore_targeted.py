"""Targeted attacks in whole runs: the backdoor measure, its files, attack schedules, resume, bad input."""
import csv
import math

import pytest
import torch

from experiments.datasets import flip_mask
from experiments.datasets.idx import DEBIAN_FASHION
from experiments.tools import UserException
from simulator import Config, run
from simulator.cli.main import main
from simulator.core.metrics import EVAL_COLUMNS
from simulator.core.seeding import generator
from simulator.core.simulation import Simulation
from simulator.core.store import CHECKPOINT, EVALS, SUMMARY

TARGET = 6


def _without_time(rows):
    return [{k: v for k, v in row.items() if k != "step_time"} for row in rows]


def _linear(sim):
    """Set the digits logistic regression so it predicts the target iff pixel (0, 0) > 0.5, else class 0."""
    weight, bias = torch.zeros(10, 64), torch.zeros(10)
    weight[TARGET, 0], bias[0] = 10.0, 5.0
    sim.model.module.load_state_dict({"1.weight": weight, "1.bias": bias})


def _images(corner):
    """8x8 images, dark but for pixel (0, 0) = ``corner[i]`` and pixel (0, 7) = 1 - ``corner[i]``."""
    images = torch.zeros(len(corner), 1, 8, 8)
    images[:, 0, 0, 0] = torch.tensor(corner, dtype=torch.float32)
    images[:, 0, 0, 7] = 1 - images[:, 0, 0, 0]
    return images


def test_asr_and_robust_accuracy_of_a_model_whose_predictions_are_known(small):
    sim = Simulation(small(model="simples-logit(in_features=64)", attack=f"badnets(size=3,target={TARGET})",
                           nb_decl_byz=2, test_batch_size=2))
    _linear(sim)
    # labels 0, 0, 1, target, 2: the target-class image is left out; the trigger (bottom-right) misses pixel (0, 0)
    sim.test = (_images([1, 0, 0, 1, 1]), torch.tensor([0, 0, 1, TARGET, 2]))
    row = sim.evaluate()
    assert row["asr"] == 2 / 4  # the two bright non-target images go to the target
    assert row["robust_accuracy"] == 1 / 4  # the dark class-0 image keeps its label (class 0)
    assert row["accuracy"] == 2 / 5  # clean: the dark class-0 image and the bright target image


def test_the_backdoor_is_tested_on_the_images_mirrored_as_the_clean_evaluation_was(small):
    sim = Simulation(small(dataset="digits(flip=true)", model="simples-logit(in_features=64)",
                           attack=f"badnets(size=3,target={TARGET})", nb_decl_byz=2, test_batch_size=3))
    _linear(sim)
    corner = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    sim.test = (_images(corner), torch.zeros(10, dtype=torch.long))
    flips = flip_mask((10,), generator(sim.config.seed, "evaluation flip"))  # the first evaluation's draw
    bright = [c if not f else 1 - c for c, f in zip(corner, flips.tolist())]  # pixel (0, 0) after mirroring
    row = sim.evaluate()
    assert 0 < sum(flips.tolist()) < 10
    assert row["asr"] == sum(bright) / 10 and row["robust_accuracy"] == (10 - sum(bright)) / 10


def test_a_targeted_run_records_the_backdoor_beside_accuracy_and_others_do_not(small):
    result = run(small(attack="badnets(size=3,end=20)", nb_decl_byz=2), progress=False)
    with open(result.folder / EVALS) as handle:
        assert next(csv.reader(handle)) == [*EVAL_COLUMNS, "asr", "robust_accuracy"]
    asr = [e["asr"] for e in result.evaluations]
    summary = result.summary
    assert summary["final_asr"] == asr[-1] and summary["best_asr"] == max(asr)
    assert summary["final_robust_accuracy"] == result.evaluations[-1]["robust_accuracy"]
    # attacked steps 0..19: the evaluations at steps 20 and 30 come 0 and 10 steps after the last one
    assert summary["last_attacked_step"] == 19 and summary["asr_after_attack"] == {"0": asr[2], "10": asr[3]}
    assert summary["best_asr"] > 0.5  # two attackers of seven teach the 8x8 digits the trigger in 20 steps
    plain = run(small(attack="labelflip", nb_decl_byz=2), progress=False)
    with open(plain.folder / EVALS) as handle:
        assert next(csv.reader(handle)) == list(EVAL_COLUMNS)
    assert not any("asr" in key or "robust" in key for key in plain.summary)


def test_durability_is_left_out_when_the_schedule_has_no_end_before_the_runs(small):
    result = run(small(attack="targetflip(source=3,target=8,every=4)", nb_decl_byz=2), progress=False)
    assert result.summary["final_asr"] >= 0 and "asr_after_attack" not in result.summary


def test_an_attack_scheduled_from_step_k_is_the_attack_free_run_until_k_bit_for_bit(small, tmp_path):
    k = 12
    free = run(small(attack="none", aggregator="average", eval_every=4, momentum=0.9, momentum_at="worker",
                     output=str(tmp_path / "free")), progress=False)
    late = run(small(attack=f"ipm(epsilon=10,begin={k})", aggregator="average", eval_every=4, momentum=0.9,
                     momentum_at="worker", output=str(tmp_path / "late")), progress=False)
    assert _without_time(late.metrics[:k]) == _without_time(free.metrics[:k])
    assert [e for e in late.evaluations if e["step"] <= k] == [e for e in free.evaluations if e["step"] <= k]
    assert late.metrics[k]["aggregate_distance"] != free.metrics[k]["aggregate_distance"]


def test_the_simulation_attacks_only_on_the_scheduled_steps(small, monkeypatch):
    from attacks.ipm import InnerProductManipulation as IPM
    seen = []
    original = IPM.byzantine
    monkeypatch.setattr(IPM, "byzantine", lambda self, honest, f, ctx: seen.append(ctx.step) or
                        original(self, honest, f, ctx))
    sim = Simulation(small(attack="ipm(begin=2,end=9,every=3)"))
    seen.clear()  # the probe's call
    for _ in range(12):
        sim.step()
    assert seen == [2, 5, 8]


def test_federated_rounds_with_client_sampling_poison_each_clients_local_batches(small):
    result = run(small(attack="dba(size=2,gap=1)", model="simples-digits", clients=14, clients_per_round=6,
                       nb_real_byz=4, nb_decl_byz=1, local_steps=3, steps=20), progress=False)
    assert result.summary["final_asr"] == result.evaluations[-1]["asr"]
    assert any(row["byzantine_selected"] > 1 for row in result.metrics)


@pytest.mark.parametrize("attack", ["ipm(epsilon=10,begin=15,end=30,every=2)", "badnets(size=3,begin=10,end=22)",
                                    "edgecase(every=3)"])
def test_a_killed_run_resumes_on_its_schedule(small, tmp_path, killed_at, attack):
    config = small(attack=attack, nb_decl_byz=2, steps=40)
    reference = run(Config(**{**config.to_dict(), "output": str(tmp_path / "reference")}), progress=False)
    killed_at(config, 25)
    assert torch.load(config.folder() / CHECKPOINT, weights_only=False)["t"] == 20
    resumed = run(config, progress=False)
    assert _without_time(resumed.metrics) == _without_time(reference.metrics)
    assert resumed.evaluations == reference.evaluations
    assert {k: v for k, v in resumed.summary.items() if k not in ("wall_time",)} == \
        {k: v for k, v in reference.summary.items() if k not in ("wall_time",)}


@pytest.mark.parametrize("args, words", [
    (["--attack", "ipm(begin=30)"], "never attacks within the run's 30 steps"),
    (["--attack", "alie(begin=40,every=5)"], "never attacks"),
    (["--attack", "badnets(size=9)"], "trigger at row -1, column -1 inside the 8x8 image"),
    (["--attack", "badnets(size=2,row=7)"], "trigger at row 7, column 6 inside the 8x8 image"),
    (["--attack", "dba"], "global trigger"),
    (["--attack", "badnets(target=10)"], "target < 10"),
    (["--attack", "targetflip(source=10)"], "source < 10"),
    (["--attack", "badnets(fraction=0)"], "0 < fraction <= 1"),
    (["--attack", "dba(fraction=1.01)"], "0 < fraction <= 1"),
])
def test_bad_targeted_input_ends_with_one_line_and_leaves_nothing(tmp_path, capsys, args, words):
    code = main(["train", "--steps", "30", "--nb-workers", "7", "--nb-decl-byz", "2", "--output",
                 str(tmp_path / "out"), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2 and words.lower() in err.lower(), err
    assert err.startswith("byzsim: error:") and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_targeted_attack_needing_the_server_is_refused_on_worker_ranks(small):
    with pytest.raises(UserException, match=r"torchrun\(byzantine=server\)"):
        Simulation(small(attack="dba(size=2,gap=1)", execution="torchrun(byzantine=ranks)"))
    Simulation(small(attack="targetflip", execution="torchrun(byzantine=ranks)"))  # a pure function of the batch


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_undefended_badnets_backdoors_fashion_mnist_in_federated_rounds(tmp_path):
    """20% Byzantine clients, 10 of 50 clients a round, 5 local steps, the plain average: ASR above 0.8 in 30
    rounds while the clean accuracy stays that of a model learning (about 6 s on two CPU cores)."""
    result = run(Config(dataset="fashionmnist", model="simples-full", clients=50, clients_per_round=10,
                        nb_real_byz=10, nb_decl_byz=2, local_steps=5, local_lr=0.05, batch_size=32,
                        aggregator="average", attack="badnets", steps=30, eval_every=10, seed=1,
                        output=str(tmp_path)), progress=False)
    assert result.summary["final_asr"] > 0.8
    assert result.summary["final_accuracy"] > 0.7
    assert result.summary["final_robust_accuracy"] < 0.2
    assert not math.isnan(result.evaluations[0]["asr"]) and result.evaluations[0]["asr"] < 0.2
    assert (result.folder / SUMMARY).exists()
