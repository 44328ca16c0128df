"""Model constructors by name: custom modules under this folder, then torchvision.

Every module ``experiments/models/<module>.py`` lists its constructors in
``__all__``; constructor ``<fn>`` is then named ``"<module>-<fn>"``. Modules are
discovered on first use (not at package import, which stays cheap). A module
that fails to import does not vanish: asking for one of its models raises a
`UserException` carrying the import error. Torchvision models answer to their own
name (``"resnet18"``) and to ``"torchvision-<name>"``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from experiments.registry import Registry, import_modules
from experiments.tools import UnavailableException

__all__ = ["REGISTRY", "names", "describe", "constructor", "make_registry"]

_TORCHVISION = "torchvision-"


def _discover(registry: Registry) -> None:
    """Add ``<module>-<fn>`` for every constructor listed in a custom module's ``__all__``."""
    modules, registry.broken = import_modules(__name__)
    for module in modules:
        short = module.__name__.rsplit(".", 1)[1]
        for attr in getattr(module, "__all__", ()):
            registry.add(f"{short}-{attr}", getattr(module, attr))


def make_registry() -> Registry[Callable[..., torch.nn.Module]]:
    """A fresh registry of the custom models (discovered on first use)."""
    return Registry("model", discover=_discover)


REGISTRY = make_registry()


def names() -> list[str]:
    """Names of the custom models (torchvision's are also accepted by `Model`)."""
    return REGISTRY.names()


def describe(name: str) -> str:
    """One line describing a custom model (first line of its docstring)."""
    return REGISTRY.describe(name)


def _torchvision_names() -> list[str]:
    import torchvision.models
    return list(torchvision.models.list_models())


def constructor(name: str) -> Callable[..., torch.nn.Module]:
    """The constructor for a custom or torchvision model name (lower-case)."""
    if name in REGISTRY or name.split("-", 1)[0] in {m.rsplit(".", 1)[1] for m in REGISTRY.broken}:
        return REGISTRY.get(name)
    import torchvision.models
    bare = name[len(_TORCHVISION):] if name.startswith(_TORCHVISION) else name
    if bare in _torchvision_names():
        return torchvision.models.get_model_builder(bare)
    raise UnavailableException("model", name, [*REGISTRY.names(), *_torchvision_names()])
