"""Snapshots of state dictionaries (models, optimizers, plain data), saved atomically.

A `Checkpoint` keeps one state dictionary per class of snapshotted object
(`Model` and `Optimizer` wrappers are unwrapped to their torch module and
optimizer). Files are written through `experiments.atomic.atomic_write` (temporary sibling,
fsync, `os.replace`, fsync of the folder), so a killed process never leaves a
truncated checkpoint.
"""
from __future__ import annotations

import copy
import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from experiments.atomic import atomic_write
from experiments.model import Model
from experiments.optimizer import Optimizer
from experiments.tools import UserException

__all__ = ["Checkpoint", "Storage"]


class Storage(dict):
    """A plain dictionary implementing the ``state_dict`` protocol.

    Values saved to a file must be what `torch.load(weights_only=True)` accepts:
    tensors, numbers, strings, None, and lists/tuples/dicts of them.
    """

    def state_dict(self) -> dict:
        """A shallow copy as a plain dict."""
        return dict(self)

    def load_state_dict(self, state: dict) -> None:
        """Replace the content with `state`."""
        self.clear()
        self.update(state)


def _unwrap(instance: Any) -> Any:
    """A Model stands for its module, an Optimizer for its torch optimizer."""
    if isinstance(instance, Model):
        return instance.module
    if isinstance(instance, Optimizer):
        return instance.optim
    return instance


def _key(instance: Any) -> str:
    cls = type(instance)
    return f"{cls.__module__}.{cls.__qualname__}"


def atomic_save(obj: Any, filepath: Path) -> None:
    """`torch.save` into memory, then `experiments.atomic.atomic_write` it into place."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(filepath, buffer.getvalue())


class Checkpoint:
    """Collection of state dictionaries, one per class, with save/load helpers."""

    def __init__(self) -> None:
        self._store: dict[str, Any] = {}
        self._references: set[str] = set()

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, instance: Any) -> bool:
        return _key(_unwrap(instance)) in self._store

    def snapshot(self, instance: Any, overwrite: bool = False, deepcopy: bool = False,
                 nowarnref: bool = False) -> Checkpoint:
        """Store the state dictionary of `instance` (by reference unless `deepcopy`).

        A snapshot by reference shares tensors with the live object; restoring it
        warns unless `nowarnref` says that this is intended.
        """
        instance = _unwrap(instance)
        key = _key(instance)
        if key in self._store and not overwrite:
            raise UserException(f"A snapshot of a {key} already exists; pass overwrite=True to replace it.")
        state = instance.state_dict()
        self._store[key] = copy.deepcopy(state) if deepcopy else state
        if deepcopy or nowarnref:
            self._references.discard(key)
        else:
            self._references.add(key)
        return self

    def restore(self, instance: Any, nothrow: bool = False) -> Checkpoint:
        """Load the stored state into `instance`; a missing snapshot raises unless `nothrow`."""
        instance = _unwrap(instance)
        key = _key(instance)
        if key not in self._store:
            if nothrow:
                return self
            raise UserException(f"No snapshot of a {key} in this checkpoint.")
        if key in self._references:
            warnings.warn(f"Restoring a snapshot of a {key} taken by reference: it shares tensors with the "
                          "live object (take it with deepcopy=True, or pass nowarnref=True).", stacklevel=2)
        instance.load_state_dict(self._store[key])
        return self

    def save(self, filepath: str | Path, overwrite: bool = False) -> Checkpoint:
        """Write the snapshots to `filepath` atomically; an existing file needs `overwrite`."""
        filepath = Path(filepath)
        if filepath.exists() and not overwrite:
            raise UserException(f"Checkpoint file {str(filepath)!r} already exists; pass overwrite=True to replace it.")
        if not filepath.parent.is_dir():
            raise UserException(f"Cannot save checkpoint: folder {str(filepath.parent)!r} does not exist.")
        atomic_save(self._store, filepath)
        return self

    def load(self, filepath: str | Path, overwrite: bool = False) -> Checkpoint:
        """Read snapshots from `filepath` (onto the CPU); a non-empty checkpoint needs `overwrite`."""
        if self._store and not overwrite:
            raise UserException("This checkpoint already holds snapshots; pass overwrite=True to replace them.")
        filepath = Path(filepath)
        if not filepath.is_file():
            raise UserException(f"Checkpoint file {str(filepath)!r} does not exist.")
        try:
            store = torch.load(filepath, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
            raise UserException(f"Cannot read checkpoint {str(filepath)!r}: {str(err).splitlines()[0]}") from None
        if not isinstance(store, dict):
            raise UserException(f"File {str(filepath)!r} is not a checkpoint.")
        self._store = store
        self._references = set()
        return self
