"""Datasets by name: offline readers for digits, MNIST, Fashion-MNIST and CIFAR-10.

Two views of the same data:
- `build` gives a map-style `torch.utils.data.Dataset` (for `experiments.Dataset`
  and DataLoaders), with torchvision-style items and transforms; names not in
  the registry fall back to the torchvision dataset class of that lower-case name.
- `load_tensors` gives a whole split as two tensors (float32 [N,C,H,W],
  normalised exactly like the default test transform, or in [0, 1] with
  ``normalise=False``, and int64 [N]) for the simulator, which keeps datasets
  on the device and needs no DataLoader; a dataset spec
  (``fashionmnist(flip=true,normalise=false)``, see `pipeline`) says how the
  simulator serves them.
Nothing is downloaded unless ``download=True`` is passed.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from experiments.datasets.pipeline import Pipeline, flip_mask, hflip, parse
from experiments.datasets.spec import REGISTRY, ArrayDataset, Spec, to_unit
from experiments.paths import default_root
from experiments.tools import ArgumentException, UnavailableException, UserException

__all__ = ["REGISTRY", "Spec", "names", "describe", "num_classes", "load_tensors", "build", "get_default_transform",
           "torchvision_names", "Pipeline", "parse", "flip_mask", "hflip"]


names = REGISTRY.names  # the datasets readable offline
describe = REGISTRY.describe  # one line describing a dataset


def num_classes(name: str) -> int:
    """Number of classes of a dataset."""
    return REGISTRY.get(name).num_classes


def _root(root: str | Path | None) -> Path:
    return Path(root).expanduser() if root is not None else default_root()


def load_tensors(name: str, train: bool, root: str | Path | None = None, download: bool = False,
                 normalise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split as (float32 [N,C,H,W] normalised like the test transform, int64 [N]).

    ``normalise=False`` leaves the pixels in [0, 1] (ToTensor's arithmetic, no standardisation).
    """
    spec = REGISTRY.get(name)
    images, labels = spec.read(_root(root), train, download)
    labels = torch.from_numpy(labels).to(torch.int64)
    if not normalise:
        return to_unit(images), labels
    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in spec.stats())
    return (to_unit(images) - mean) / std, labels


def torchvision_names() -> list[str]:
    """Lower-case names of torchvision's dataset classes (need download=True or a local copy)."""
    import torchvision.datasets
    return sorted(n.lower() for n in torchvision.datasets.__all__ if isinstance(getattr(torchvision.datasets, n), type))


def get_default_transform(dataset: str, train: bool) -> Callable:
    """Default transform: to tensor and normalise; random augmentation only on training sets."""
    import torchvision.transforms as T
    if dataset not in REGISTRY:
        if dataset in torchvision_names():
            return T.ToTensor()
        raise UnavailableException("dataset", dataset, [*REGISTRY.names(), *torchvision_names()])
    spec = REGISTRY.get(dataset)
    mean, std = spec.stats()
    steps = spec.augment() if train else []
    if spec.name != "digits":  # digits items already are [0,1] tensors
        steps.append(T.ToTensor())
    steps.append(T.Normalize(mean, std))
    return T.Compose(steps)


def build(name: str, root: str | Path | None = None, *args: Any, train: bool = True,
          transform: Callable | None = None, target_transform: Callable | None = None,
          download: bool = False, **kwargs: Any) -> torch.utils.data.Dataset:
    """A map-style dataset; `transform=None` uses `get_default_transform(name, train)`."""
    transform = transform if transform is not None else get_default_transform(name, train)
    if name in REGISTRY:
        if args or kwargs:
            raise ArgumentException(f"Dataset {name!r} takes no extra arguments, got {list(args) + list(kwargs)}.")
        images, labels = REGISTRY.get(name).read(_root(root), train, download)
        return ArrayDataset(images, labels, transform, target_transform)
    import torchvision.datasets
    classes = {n.lower(): getattr(torchvision.datasets, n) for n in torchvision.datasets.__all__}
    if name not in classes:
        raise UnavailableException("dataset", name, [*REGISTRY.names(), *torchvision_names()])
    try:
        return classes[name](str(_root(root)), *args, train=train, transform=transform,
                   target_transform=target_transform, download=download, **kwargs)
    except TypeError as err:
        raise ArgumentException(f"Invalid arguments for torchvision dataset {name!r}: {err}") from None
    except RuntimeError as err:  # torchvision's "Dataset not found or corrupted"
        raise UserException(f"Dataset {name!r} not available under {str(_root(root))!r}: {err}") from None
