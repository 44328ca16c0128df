"""Model-poisoning backdoors in whole runs: model replacement's single shot, the scale a run gives it, Neurotoxin's
mask and bound on the vectors a run sends, bad input."""
import pytest

import attacks.replacement as replacement
from attacks.neurotoxin import Neurotoxin, neurotoxin_mask
from simulator import run
from simulator.cli.main import main
from simulator.core.simulation import Simulation

SHOT = 29  # the single shot's round: the evaluation at round 30 comes right after it, the run ends at 40


def federated(small, **changes):
    """Digits, 10 clients a round of which one Byzantine, 5 local steps: a model near 0.93 accuracy by round 30."""
    return small(**{**dict(model="simples-digits", nb_workers=10, nb_decl_byz=1, local_steps=5, local_lr=0.05,
                           batch_size=32, aggregator="average", steps=SHOT + 11, eval_every=10, seed=1),
                    **changes})


def test_a_single_scaled_shot_replaces_the_model_where_an_unscaled_one_does_not(small):
    scaled = run(federated(small, attack=f"model-replacement(begin={SHOT},end={SHOT + 1})"), progress=False)
    plain = run(federated(small, attack=f"model-replacement(scale=1,begin={SHOT},end={SHOT + 1})"), progress=False)
    after, before = scaled.summary["asr_after_attack"]["0"], plain.summary["asr_after_attack"]["0"]
    assert scaled.summary["last_attacked_step"] == SHOT and after == scaled.evaluations[-2]["asr"]
    assert after > 0.9 and before < 0.5, (after, before)  # seeds 1-3: 0.99-1.0 against 0.07-0.25
    assert scaled.evaluations[-2]["accuracy"] > 0.8  # the attacker's model keeps the main task


@pytest.mark.parametrize("changes, gamma", [
    (dict(server_opt="sgd(lr=0.5)"), 10 / 0.5),  # federated: n / the server's lr
    (dict(local_steps=1, local_lr=None, lr=0.1), 10.0),  # one gradient per step: n, whatever the lr
])
def test_a_run_tells_model_replacement_its_setting_and_the_servers_lr(small, monkeypatch, changes, gamma):
    scales = []
    original = replacement.replacement_scale
    monkeypatch.setattr(replacement, "replacement_scale", lambda ctx: scales.append(original(ctx)) or scales[-1])
    sim = Simulation(federated(small, attack="model-replacement", **changes))
    scales.clear()  # the probe's
    sim.step()
    assert scales == [gamma]


def test_neurotoxin_sends_updates_off_the_previous_aggregates_top_coordinates_within_its_bound(small, monkeypatch):
    sent = []
    original = Neurotoxin.byzantine
    monkeypatch.setattr(Neurotoxin, "byzantine", lambda self, honest, f, ctx: sent.append(
        (ctx.previous_aggregate, original(self, honest, f, ctx))) or sent[-1][1])
    sim = Simulation(federated(small, attack="neurotoxin(ratio=0.1,bound=0.05)", nb_real_byz=2, nb_decl_byz=2))
    sent.clear()  # the probe's
    for _ in range(3):
        sim.step()
    assert sent[0][0] is None  # the first round: the attackers' own clean updates give the mask
    for previous, vectors in sent[1:]:
        dropped = ~neurotoxin_mask(previous, 0.1)
        assert dropped.sum() == sim.model.get().numel() - int(0.9 * sim.model.get().numel())
        assert vectors[:, dropped].eq(0).all() and vectors[:, ~dropped].ne(0).any()
        assert vectors.norm(dim=1).max() <= 0.05 * (1 + 1e-5)
    assert sim.evaluate()["asr"] >= 0  # a targeted attack: its backdoor is measured


@pytest.mark.parametrize("attack, words", [
    ("model-replacement(scale=0)", "scale > 0"),
    ("model-replacement(bound=0)", "bound > 0"),
    ("model-replacement(size=9)", "inside the 8x8 image"),
    ("neurotoxin(ratio=1)", "0 <= ratio < 1"),
    ("neurotoxin(bound=-1)", "bound > 0"),
    ("neurotoxin(target=10)", "target < 10"),
])
def test_bad_input_ends_with_one_line_and_leaves_nothing(tmp_path, capsys, attack, words):
    code = main(["train", "--steps", "30", "--nb-workers", "7", "--nb-decl-byz", "2", "--output",
                 str(tmp_path / "out"), "--quiet", "--attack", attack])
    err = capsys.readouterr().err
    assert code == 2 and words.lower() in err.lower(), err
    assert err.startswith("byzsim: error:") and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
