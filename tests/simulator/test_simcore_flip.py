"""``dataset(flip=true,normalise=false)``: flipped training batches and test images from the run's own streams,
unnormalised pixels, run ids kept for bare names, resume, the command line."""
import json
import struct

import numpy as np
import pytest
import torch

from experiments import UserException, datasets
from simulator import Config, run
from simulator.cli.main import main
from simulator.core.build import samplers, training_set
from simulator.core.flips import FlippingSampler
from simulator.core.sampler import WorkerSampler
from simulator.core.seeding import generator
from simulator.core.simulation import Simulation
from simulator.core.store import CHECKPOINT


def _without_time(rows):
    return [{k: v for k, v in row.items() if k != "step_time"} for row in rows]


def test_a_bare_dataset_keeps_its_run_id_and_parameters_make_another():
    # engine: the default these ids were made under (the default is now "fastest", another engine, another id)
    setting = dict(aggregator="krum", attack="alie(z=1.5)", nb_workers=51, nb_decl_byz=12, engine="auto")
    bare = Config(dataset="fashionmnist", **setting)
    assert bare.run_id() == "fashionmnist-krum-alie-f12-s1-6481946818"  # its id before datasets took parameters
    assert bare.identity()["dataset"] == "fashionmnist"
    spelled = Config(dataset="FashionMNIST(flip=false, normalise=true)", **setting)
    assert spelled.dataset == "fashionmnist" and spelled.run_id() == bare.run_id()
    flipped = Config(dataset="fashionmnist(normalise=false,flip=true)", **setting)
    assert flipped.dataset == "fashionmnist(flip=true,normalise=false)" and flipped.dataset_name == "fashionmnist"
    assert flipped.run_id().startswith("fashionmnist-krum-alie-f12-s1-") and flipped.run_id() != bare.run_id()
    assert flipped.model_name == bare.model_name == "simples-conv"  # the dataset's default model, by its name


def test_without_flips_nothing_is_built_and_nothing_drawn(small):
    sim = Simulation(small())
    assert type(sim.sampler) is WorkerSampler and type(sim.byzantine_sampler) is WorkerSampler
    assert sim.evaluation_flips is None and "evaluation_flips" not in sim.state_dict()


def test_the_flipping_sampler_mirrors_what_its_mask_says():
    inputs = torch.arange(10 * 6, dtype=torch.float32).view(10, 1, 2, 3)  # asymmetric images: a flip shows
    targets = torch.arange(10)
    parts = [torch.arange(0, 5), torch.arange(5, 10)]
    plain = WorkerSampler(inputs, targets, parts, 4, seed=3)
    flipping = FlippingSampler(inputs, targets, parts, 4, seed=3, flips=torch.Generator().manual_seed(9))
    masks = torch.Generator().manual_seed(9)
    seen = set()
    for _ in range(5):
        (x, y), (fx, fy) = plain.sample(), flipping.sample()
        mask = datasets.flip_mask((2, 4), masks)
        assert torch.equal(fy, y)  # the same samples, the same labels
        assert torch.equal(fx, torch.where(mask[..., None, None, None], x.flip(-1), x))
        seen |= set(mask.flatten().tolist())
    assert seen == {True, False}
    rows = torch.tensor([1])  # a round of some workers: their rows of the draw of all of them
    x, _ = plain.sample(rows)
    fx, _ = flipping.sample(rows)
    assert torch.equal(fx, datasets.hflip(x, datasets.flip_mask((2, 4), masks)[rows]))


def test_a_slice_of_the_workers_flips_what_one_process_of_all_of_them_flips(small):
    c = small(dataset="digits(flip=true)", nb_workers=7, nb_decl_byz=2)
    train, parts, _ = training_set(c, torch.device("cpu"))
    everyone = samplers(c, train, parts)
    some = samplers(c, train, parts, honest=range(2, 4), byzantine=range(1, 2))
    for _ in range(3):
        (x, y), (sx, sy) = everyone[0].sample(), some[0].sample()
        assert torch.equal(sx, x[2:4]) and torch.equal(sy, y[2:4])
        (bx, _), (sbx, _) = everyone[1].sample(), some[1].sample()
        assert torch.equal(sbx, bx[1:2])


def test_each_evaluation_flips_each_test_image_anew(small):
    sim = Simulation(small(dataset="digits(flip=true)"))
    inputs, labels = sim.test
    masks = generator(sim.config.seed, "evaluation flip")

    def loss(x):
        return torch.nn.functional.cross_entropy(sim.model.run(x), labels).item()

    for _ in range(2):
        expected = loss(datasets.hflip(inputs, datasets.flip_mask((len(labels),), masks)))
        assert sim.evaluate()["test_loss"] == pytest.approx(expected, rel=1e-6)
        assert expected != pytest.approx(loss(inputs), rel=1e-6)


def test_broken_evaluation_draws_none_of_the_runs_flips(small):
    sim = Simulation(small(dataset="digits(flip=true)"))
    state = sim.evaluation_flips.get_state()
    sim.broken_evaluation()
    assert torch.equal(sim.evaluation_flips.get_state(), state) and sim.evaluations == []


def test_without_normalisation_the_run_sees_unit_pixels(small):
    sim = Simulation(small(dataset="digits(normalise=false)"))
    batch, _ = sim.sampler.sample()
    for tensor in (sim.test[0], batch):
        assert tensor.min() >= 0 and tensor.max() <= 1
    assert Simulation(small()).test[0].min() < 0  # normalised by default


def test_flips_change_the_run_and_keep_it_deterministic(small, tmp_path):
    config = small(dataset="digits(flip=true)", steps=10)
    a = run(config, progress=False)
    b = run(Config(**{**config.to_dict(), "output": str(tmp_path / "again")}), progress=False)
    assert _without_time(a.metrics) == _without_time(b.metrics) and a.evaluations == b.evaluations
    plain = run(small(steps=10), progress=False)
    assert _without_time(plain.metrics) != _without_time(a.metrics)


def test_a_flipping_run_resumes_to_the_same_result(small, tmp_path, killed_at):
    config = small(dataset="digits(flip=true,normalise=false)", validation_split=0.1, momentum=0.9,
                   momentum_at="worker", attack="labelflip", steps=40)
    reference = run(Config(**{**config.to_dict(), "output": str(tmp_path / "reference")}), progress=False)
    killed_at(config, 25)
    state = torch.load(config.folder() / CHECKPOINT, weights_only=False)
    assert state["t"] == 20 and "flips" in state["sampler"] and "evaluation_flips" in state
    resumed = run(config, progress=False)
    assert _without_time(resumed.metrics) == _without_time(reference.metrics)
    assert resumed.evaluations == reference.evaluations


def _write_fashion(root, n_train=12, n_test=6):
    """Random Fashion-MNIST-shaped IDX files where the fashionmnist reader looks first."""
    folder = root / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind, array in (("images-idx3", rng.integers(0, 256, (n, 28, 28))), ("labels-idx1", np.arange(n) % 10)):
            header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
            (folder / f"{prefix}-{kind}-ubyte").write_bytes(header + array.astype(np.uint8).tobytes())


def test_the_command_line_takes_a_dataset_spec(tmp_path, capsys):
    _write_fashion(tmp_path / "data")
    code = main(["train", "--dataset", "fashionmnist(flip=true,normalise=false)", "--data-root", str(tmp_path / "data"),
                 "--nb-workers", "3", "--nb-decl-byz", "0", "--batch-size", "2", "--steps", "2", "--eval-every", "1",
                 "--output", str(tmp_path / "out"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    (folder,) = (tmp_path / "out").iterdir()
    assert folder.name.startswith("fashionmnist-average-none-f0-s1-")
    assert json.loads((folder / "config.json").read_text())["dataset"] == "fashionmnist(flip=true,normalise=false)"
    assert main(["train", "--dataset", "fashionmnist(flp=true)", "--output", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "no parameter 'flp'" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_train_help_describes_the_dataset_parameters(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "fashionmnist(flip=true,normalise=false)" in out and "normalise" in out


def test_a_study_runs_on_a_dataset_spec(tmp_path):
    from simulator.studies import get
    from simulator.studies.pipeline import choose_dataset
    _write_fashion(tmp_path)
    spec = "fashionmnist(flip=true,normalise=false)"
    assert choose_dataset(get("momentum"), spec, str(tmp_path)) == (spec, "asked for with --dataset")
    with pytest.raises(UserException, match="no parameter 'flp'"):
        choose_dataset(get("momentum"), "fashionmnist(flp=true)", str(tmp_path))
