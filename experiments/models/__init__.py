"""Model constructors by name: custom modules under this folder, then torchvision.

Every module ``experiments/models/<module>.py`` lists its constructors in
``__all__``; constructor ``<fn>`` is then named ``"<module>-<fn>"``. Modules are
discovered on first use (not at package import, which stays cheap). A module
that fails to import does not vanish: asking for one of its models raises a
`UserException` carrying the import error. Torchvision models answer to their own
name (``"resnet18"``) and to ``"torchvision-<name>"``.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from experiments.tools import UnavailableException, UserException

__all__ = ["names", "describe", "constructor"]

_TORCHVISION = "torchvision-"


@dataclass
class _Discovery:
    builders: dict[str, Callable[..., torch.nn.Module]] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # module name -> import error


@functools.cache
def _discover() -> _Discovery:
    found = _Discovery()
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception as err:  # any failure is reported when one of its models is asked for
            found.broken[info.name] = f"{type(err).__name__}: {err}"
            continue
        for attr in getattr(module, "__all__", ()):
            found.builders[f"{info.name}-{attr}"] = getattr(module, attr)
    return found


def _torchvision_names() -> list[str]:
    import torchvision.models
    return list(torchvision.models.list_models())


def names() -> list[str]:
    """Names of the custom models (torchvision's are also accepted by `Model`)."""
    return sorted(_discover().builders)


def describe(name: str) -> str:
    """One line describing a custom model (first line of its docstring)."""
    builder = _custom(name)
    doc = (builder.__doc__ or "").strip().splitlines()
    return doc[0] if doc else name


def _custom(name: str) -> Callable[..., torch.nn.Module]:
    found = _discover()
    if name in found.builders:
        return found.builders[name]
    module = name.split("-", 1)[0]
    if module in found.broken:
        raise UserException(f"Model {name!r} is unavailable because module 'experiments.models.{module}' "
                            f"failed to import ({found.broken[module]}).")
    raise UnavailableException("model", name, found.builders)


def constructor(name: str) -> Callable[..., torch.nn.Module]:
    """The constructor for a custom or torchvision model name (lower-case)."""
    found = _discover()
    if name in found.builders or name.split("-", 1)[0] in found.broken:
        return _custom(name)
    import torchvision.models
    bare = name[len(_TORCHVISION):] if name.startswith(_TORCHVISION) else name
    if bare in _torchvision_names():
        return torchvision.models.get_model_builder(bare)
    raise UnavailableException("model", name, [*found.builders, *_torchvision_names()])
