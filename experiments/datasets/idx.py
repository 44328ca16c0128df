"""MNIST and Fashion-MNIST from their IDX files (LeCun et al. 1998; Xiao et al. 2017).

Files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``, gzipped or not, are
looked for in ``<root>/<ClassName>/raw`` (torchvision's layout), then directly
in ``<root>``; Fashion-MNIST also in ``/usr/share/datasets/fashion-mnist``
(Debian's ``dataset-fashion-mnist``). Normalisation constants are the usual
training-set pixel mean and standard deviation.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from experiments.datasets.spec import Spec, not_found, register
from experiments.tools import UserException

__all__ = ["MNIST", "FASHIONMNIST", "read_idx", "find_idx"]

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (gzipped if its name ends in .gz)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as file:
            data = file.read()
    except (OSError, EOFError) as err:
        raise UserException(f"Cannot read IDX file {str(path)!r}: {err}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise UserException(f"File {str(path)!r} is not an IDX file (bad magic number).")
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_TYPES[data[2]])
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)) * dtype.itemsize:
        raise UserException(f"IDX file {str(path)!r} is truncated or corrupt: size does not match its header {dims}.")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(dims).astype(dtype.newbyteorder("="))


def _files(train: bool) -> tuple[str, str]:
    prefix = "train" if train else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def find_idx(folders: list[Path], train: bool) -> tuple[Path, Path] | None:
    """The first folder holding both the images and labels file of the split (each gzipped or not)."""
    for folder in folders:
        found = [next((path for path in (folder / stem, folder / f"{stem}.gz") if path.is_file()), None)
                 for stem in _files(train)]
        if all(found):
            return found[0], found[1]
    return None


def _reader(name: str, class_name: str, extra: tuple[Path, ...]):
    def read(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
        under_root, folders = [root / class_name / "raw", root], [root / class_name / "raw", root, *extra]
        found = find_idx(under_root, train)
        if found is None and download:  # fetched into root, even where a system copy (Debian's) exists
            import torchvision.datasets
            try:
                getattr(torchvision.datasets, class_name)(str(root), train=train, download=True)
            except Exception as err:  # network and disk errors alike
                raise UserException(f"Downloading dataset {name!r} into {str(root)!r} failed: "
                                    f"{' '.join(str(err).split())}") from None  # torchvision's lines as one
            found = find_idx(under_root, train)
        found = found or find_idx(folders, train)
        if found is None:
            raise UserException(not_found(name, [f"{s}[.gz]" for s in _files(train)], folders))
        images, labels = (read_idx(path) for path in found)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserException(f"Dataset {name!r} in {str(found[0].parent)!r}: images {images.shape} "
                                f"and labels {labels.shape} do not match.")
        return np.ascontiguousarray(images, dtype=np.uint8), labels.astype(np.int64)
    return read


MNIST = register(Spec(name="mnist", description="MNIST handwritten digits, 1x28x28, 60000/10000 (local IDX files)",
                      num_classes=10, read=_reader("mnist", "MNIST", ()),
                      stats=lambda: ((0.1307,), (0.3081,))))
FASHIONMNIST = register(Spec(name="fashionmnist",
                             description="Fashion-MNIST clothing images, 1x28x28, 60000/10000 (local IDX files or Debian package)",
                             num_classes=10, read=_reader("fashionmnist", "FashionMNIST", (DEBIAN_FASHION,)),
                             stats=lambda: ((0.2860,), (0.3530,))))
