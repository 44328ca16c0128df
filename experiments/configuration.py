"""Device, dtype and transfer settings shared by every tensor `experiments` creates.

A `Configuration` is an immutable mapping with the keys ``device``, ``dtype``
and ``non_blocking``, so ``tensor.to(**config)`` places a tensor; the extra
``relink`` attribute says whether `Model.set` / `Model.set_gradient` adopt the
given tensor instead of copying it.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch

from experiments.tools import UserException

__all__ = ["Configuration", "place"]

_KEYS = ("device", "dtype", "non_blocking")


class _DefaultDevice:
    """Class attribute computed on access: ``"cuda"`` when available, else ``"cpu"``."""

    def __get__(self, instance: object, owner: type) -> str:
        return "cuda" if torch.cuda.is_available() else "cpu"


class Configuration(Mapping):
    """Immutable tensor configuration: ``device``, ``dtype``, ``non_blocking`` (+ ``relink``).

    Args:
        device: target device; ``None`` picks ``"cuda"`` when available, else
            ``"cpu"``; strings such as ``"cuda:1"`` are resolved.
        dtype: floating-point dtype; ``None`` uses torch's current default dtype.
        noblock: whether host-to-device transfers are non-blocking.
        relink: whether parameter/gradient assignments relink instead of copying.
    """

    __slots__ = ("_args", "relink")
    default_device = _DefaultDevice()

    def __init__(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                 noblock: bool = False, relink: bool = False):
        if device is None:
            device = type(self).default_device
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise UserException(f"Invalid device {device!r}: {err}") from None
        if dtype is None:
            dtype = torch.get_default_dtype()
        if not isinstance(dtype, torch.dtype):
            raise UserException(f"Invalid dtype {dtype!r}: expected a torch.dtype such as torch.float32.")
        object.__setattr__(self, "_args", {"device": device, "dtype": dtype, "non_blocking": bool(noblock)})
        object.__setattr__(self, "relink", bool(relink))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Configuration is immutable")

    def __reduce__(self) -> tuple:
        """Pickle and copy by the constructor's arguments (the instance is immutable)."""
        a = self._args
        return (type(self), (a["device"], a["dtype"], a["non_blocking"], self.relink))

    def __getitem__(self, key: str) -> Any:
        return self._args[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_KEYS)

    def __len__(self) -> int:
        return len(_KEYS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Configuration):
            return NotImplemented
        return self._args == other._args and self.relink == other.relink

    def __hash__(self) -> int:
        return hash((self["device"], self["dtype"], self["non_blocking"], self.relink))

    def __repr__(self) -> str:
        return (f"Configuration(device={str(self['device'])!r}, dtype={self['dtype']}, "
                f"non_blocking={self['non_blocking']}, relink={self.relink})")


def place(value: Any, config: Configuration | None) -> Any:
    """Move a tensor, or a tuple/list/dict of them, to `config`.

    Floating-point tensors also take the configured dtype; integer tensors (labels)
    keep theirs. ``config=None`` returns `value` unchanged.
    """
    if config is None:
        return value
    if isinstance(value, torch.Tensor):
        if value.is_floating_point():
            return value.to(**config)
        return value.to(device=config["device"], non_blocking=config["non_blocking"])
    if isinstance(value, (tuple, list)):
        return type(value)(place(v, config) for v in value)
    if isinstance(value, dict):
        return {k: place(v, config) for k, v in value.items()}
    return value
