"""Dataset specs (``fashionmnist(flip=true,normalise=false)``): parsing, flips and unnormalised tensors."""
import struct

import numpy as np
import pytest
import torch

from experiments import UserException, datasets


def write_fashion(folder, n=5):
    """Random training images and labels in the IDX format, where the fashionmnist reader looks."""
    folder.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    for name, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", np.arange(n) % 10)):
        header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
        (folder / name).write_bytes(header + array.astype(np.uint8).tobytes())
    return images


def test_a_bare_name_is_its_own_spec_and_defaults_print_away():
    assert datasets.parse("fashionmnist").spec == "fashionmnist"
    assert datasets.parse("FashionMNIST(flip=false, normalise=true)").identity == "fashionmnist"
    pipeline = datasets.parse("fashionmnist(normalise=false,flip=true)")
    assert (pipeline.name, pipeline.flip, pipeline.normalise) == ("fashionmnist", True, False)
    assert pipeline.spec == pipeline.identity == "fashionmnist(flip=true,normalise=false)"


@pytest.mark.parametrize("spec, words", [("fashionmnist(flp=true)", "no parameter 'flp'"),
                                          ("fashionmnist(flip=3)", "must be true or false"),
                                          ("fashionmnist(flip=true", "Expected")])
def test_a_mistyped_spec_is_one_line(spec, words):
    with pytest.raises(UserException, match=words):
        datasets.parse(spec)


def test_hflip_mirrors_exactly_the_masked_samples_along_the_width():
    images = torch.arange(2 * 3 * 1 * 2 * 3, dtype=torch.float32).view(2, 3, 1, 2, 3)  # [n, b, C, H, W]
    mask = torch.tensor([[True, False, False], [False, False, True]])
    flipped = datasets.hflip(images, mask)
    assert torch.equal(flipped[0, 0, 0], torch.tensor([[2., 1., 0.], [5., 4., 3.]]))
    assert torch.equal(flipped[1, 2], images[1, 2].flip(-1))
    assert torch.equal(flipped[~mask], images[~mask])  # the others untouched
    assert torch.equal(datasets.hflip(images, torch.zeros(2, 3, dtype=torch.bool)), images)


def test_flip_masks_are_a_seeded_fair_coin():
    draw = datasets.flip_mask((10_000,), torch.Generator().manual_seed(3))
    assert draw.dtype == torch.bool and abs(draw.float().mean().item() - 0.5) < 0.02
    assert torch.equal(draw, datasets.flip_mask((10_000,), torch.Generator().manual_seed(3)))


def test_without_normalisation_pixels_stay_in_the_unit_interval(tmp_path):
    images = write_fashion(tmp_path / "FashionMNIST" / "raw")
    raw, labels = datasets.load_tensors("fashionmnist", True, tmp_path, normalise=False)
    assert torch.equal(raw, torch.from_numpy(images).float().div(255).unsqueeze(1))
    assert raw.min() >= 0 and raw.max() <= 1 and labels.dtype == torch.int64
    normalised, same = datasets.load_tensors("fashionmnist", True, tmp_path)
    assert torch.equal(same, labels) and torch.allclose(normalised, (raw - 0.2860) / 0.3530)
    digits, _ = datasets.load_tensors("digits", False, normalise=False)
    assert digits.min() >= 0 and digits.max() <= 1
