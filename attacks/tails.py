"""Where the edge-case attack's tail inputs come from: a user's files, or a stand-in built from the run's data.

Wang et al. (NeurIPS 2020, Sec. 4) take their edge cases from outside the
training distribution's bulk: ARDIS, handwritten 7s from Swedish archives,
for (E)MNIST, and photos of Southwest Airlines planes for CIFAR-10; neither
can be downloaded here. So the tail inputs are either

- the user's (`load`): a folder holding ``train/`` and ``test/`` folders of
  image files (PNG, JPEG, BMP, GIF, TIFF), converted to the run's channels
  and resized to its images; or a ``.npz`` file with ``train`` and ``test``
  arrays ``[P, H, W]`` or ``[P, C, H, W]``, pixels in [0, 1] (floats) or
  0-255 (uint8). They are normalised as the run's data is;
- or the stand-in (`upside_down`): the images of the source class turned
  upside down, from the run's training set (what the attackers train on) and
  from its test set (what the backdoor is tested on). Like ARDIS's 7s they
  are inputs of the source class that the honest workers never see; unlike
  them they are a transformation of the training set's own images, not
  another source's, so the model may already place some of them in their
  class from their upright features.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from attacks.targeted import DataView
from experiments.tools import UserException

__all__ = ["IMAGE_SUFFIXES", "load", "upside_down"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def upside_down(view: DataView, source: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The stand-in tails: the ``source``-class images of the run's training and test sets, flipped top to bottom."""
    if view.train is None or view.test is None:
        raise ValueError("The upside-down stand-in needs the run's training and test sets in its data view.")
    (train_x, train_y), (test_x, test_y) = view.train, view.test
    return train_x[train_y == source].flip(-2), test_x[test_y == source].flip(-2)


def load(path: str | Path, view: DataView) -> tuple[torch.Tensor, torch.Tensor]:
    """The user's tail inputs (train, test) at ``path``, as inputs of the run (see the module docstring)."""
    path = Path(path).expanduser()
    if path.is_dir():
        train, test = (_images(path / part, view) for part in ("train", "test"))
    elif path.is_file() and path.suffix == ".npz":
        train, test = _arrays(path, view)
    else:
        raise UserException(f"Edge-case tail data {str(path)!r} is neither a folder with train/ and test/ image "
                            f"folders nor a .npz file with train and test arrays.")
    return view.inputs(train), view.inputs(test)


def _images(folder: Path, view: DataView) -> torch.Tensor:
    """The image files of ``folder`` (sorted by name) as pixels ``[P, C, H, W]`` in [0, 1], the run's size."""
    from PIL import Image  # torchvision's dependency: only this reader needs it

    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise UserException(f"Edge-case tail folder {str(folder)!r} holds no image files "
                            f"({', '.join(IMAGE_SUFFIXES)}).")
    channels, height, width = view.shape
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise UserException(f"Edge-case tail images can be read for 1 or 3 channels, not {channels}.")
    pixels = []
    for file in files:  # once per run, before the first step
        try:
            with Image.open(file) as image:
                pixels.append(np.asarray(image.convert(mode).resize((width, height)), dtype=np.float32) / 255.0)
        except OSError as err:
            raise UserException(f"Edge-case tail image {str(file)!r} cannot be read: {err}") from None
    stacked = torch.from_numpy(np.stack(pixels))
    return stacked.unsqueeze(1) if channels == 1 else stacked.permute(0, 3, 1, 2)


def _arrays(path: Path, view: DataView) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``train`` and ``test`` arrays of a .npz file as pixels ``[P, C, H, W]`` in [0, 1]."""
    try:
        with np.load(path) as data:
            arrays = {part: data[part] for part in ("train", "test")}
    except (OSError, ValueError) as err:
        raise UserException(f"Edge-case tail data {str(path)!r} cannot be read: {err}") from None
    except KeyError as err:
        raise UserException(f"Edge-case tail data {str(path)!r} has no {err} array (it needs train and test).") \
            from None
    out = []
    for part, array in arrays.items():
        pixels = torch.from_numpy(array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 1.0))
        if pixels.dim() == len(view.shape):  # [P, H, W]: one channel
            pixels = pixels.unsqueeze(1)
        if tuple(pixels.shape[1:]) != tuple(view.shape) or len(pixels) == 0:
            raise UserException(f"Edge-case tail data {str(path)!r}: {part} holds inputs of shape "
                                f"{list(array.shape)}, not [P, {', '.join(map(str, view.shape))}] with P >= 1.")
        out.append(pixels)
    return out[0], out[1]
