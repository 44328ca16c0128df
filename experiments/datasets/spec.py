"""What a custom dataset declares, and the map-style dataset built from its arrays."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.registry import Registry

__all__ = ["Spec", "ArrayDataset", "to_unit", "not_found", "REGISTRY", "register"]

# (root, train, download) -> (images, labels); images are uint8 [N,H,W] / [N,H,W,C]
# (items become PIL images, as torchvision's own datasets give) or float32
# [N,C,H,W] already in [0, 1] (items are tensors); labels are int64 [N].
Reader = Callable[[Path, bool, bool], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Spec:
    """A dataset readable offline: its reader, classes, normalisation and augmentation."""
    name: str
    description: str
    num_classes: int
    read: Reader
    stats: Callable[[], tuple[tuple[float, ...], tuple[float, ...]]]  # per-channel (mean, std) in [0, 1] units
    augment: Callable[[], list[Any]] = list  # random transforms applied before ToTensor on training sets


REGISTRY: Registry[Spec] = Registry("dataset", packages=("experiments.datasets",))


def register(spec: Spec) -> Spec:
    """Make ``spec`` available by its name (a dataset module calls this once per dataset it reads)."""
    REGISTRY.add(spec.name, spec, spec.description)
    return spec


class ArrayDataset(torch.utils.data.Dataset):
    """Map-style dataset over in-memory arrays, yielding ``(image, int label)`` like torchvision."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        self.images, self.labels = images, labels
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image = self.images[index]
        if image.dtype == np.uint8:
            from PIL import Image
            image = Image.fromarray(image)  # mode L for [H,W], RGB for [H,W,3]
        else:
            image = torch.from_numpy(image)
        label = int(self.labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label


def to_unit(images: np.ndarray) -> torch.Tensor:
    """Float32 [N,C,H,W] in [0,1], with the same arithmetic as torchvision's ToTensor."""
    if images.dtype != np.uint8:
        return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    tensor = torch.from_numpy(images)
    tensor = tensor.unsqueeze(1) if tensor.dim() == 3 else tensor.permute(0, 3, 1, 2)
    return tensor.contiguous().to(torch.float32).div(255)


def not_found(name: str, files: list[str], looked: list[Path]) -> str:
    """The one-sentence message of a missing dataset."""
    where = ", ".join(str(p) for p in looked)
    return (f"Dataset {name!r} not found: looked for {', '.join(files)} in {where}. Pass the folder holding them "
            f"with --data-root (Python: root=) or set BYZSIM_DATA to it, or fetch them with `byzsim data download "
            f"{name}` (Python: download=True).")
