"""The one registry helper behind every catalogue of byzsim.

Aggregators, attacks, models, datasets, heterogeneity modes, learning-rate
schedules and engines are each a `Registry`: a name -> entry table filled by a
decorator (``@REGISTRY.register("krum")``), with `names()`, `describe()` and
`get()`, which raises `UnavailableException` listing what exists. A registry
may name the packages whose modules hold its entries: they are imported on
first use, so adding a rule, an attack or a dataset is adding one file. A
module that fails to import does not vanish: asking for a missing name then
says which module failed and why. Plug-ins from outside the package
(`experiments.plugins`: ``BYZSIM_PLUGINS``, entry points) are loaded on the
first use of any registry.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Generic, TypeVar

from experiments import plugins
from experiments.grammar import parse_spec
from experiments.tools import UnavailableException, UserException

__all__ = ["Registry", "import_modules"]

T = TypeVar("T")


def import_modules(package_name: str) -> tuple[list[ModuleType], dict[str, str]]:
    """Import every public module of a package: (the modules, {module name: import error} of the others)."""
    package = importlib.import_module(package_name)
    modules, broken = [], {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        name = f"{package_name}.{info.name}"
        try:
            modules.append(importlib.import_module(name))
        except Exception as err:  # reported when a name is asked for, never silently lost
            broken[name] = f"{type(err).__name__}: {err}"
    return modules, broken


class Registry(Generic[T]):
    """A name -> entry table of one kind of plug-in.

    Args:
        kind: what the entries are, in messages (``"aggregator"``, ``"attack"``...).
        packages: packages whose modules are imported on first use to fill the table.
        discover: called once, on first use, to fill the table otherwise (e.g. models
            named after their module and function).
    """

    instances: list["Registry"] = []  # every registry, so a plug-in's additions can be told

    def __init__(self, kind: str, packages: Sequence[str] = (),
                 discover: Callable[["Registry[T]"], None] | None = None) -> None:
        Registry.instances.append(self)
        self.kind = kind
        self._packages = tuple(packages)
        self._discover = discover
        self._entries: dict[str, T] = {}
        self._descriptions: dict[str, str] = {}
        self._loaded = not packages and discover is None
        self.broken: dict[str, str] = {}  # module -> its import error

    # -------------------------------------------------------------- filling
    def register(self, name: str, description: str | None = None) -> Callable[[T], T]:
        """Decorator: add the class or function under ``name`` (a class gets ``cls.name = name``)."""
        def decorate(entry: T) -> T:
            if isinstance(entry, type):
                entry.name = name  # type: ignore[attr-defined]
            self.add(name, entry, description)
            return entry
        return decorate

    def add(self, name: str, entry: T, description: str | None = None) -> None:
        """Add ``entry`` under ``name``; a name is registered once."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        if description is not None:
            self._descriptions[name] = description

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for package_name in self._packages:
            self.broken.update(import_modules(package_name)[1])
        if self._discover is not None:
            self._discover(self)
        plugins.autoload()

    def entries(self) -> list[str]:
        """The names registered so far, without importing anything."""
        return list(self._entries)

    # -------------------------------------------------------------- reading
    def names(self) -> list[str]:
        """Every name, sorted."""
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """The entry registered under ``name``; `UnavailableException` listing the names otherwise."""
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            pass
        if self.broken:
            failures = "; ".join(f"module {m!r} failed to import ({e})" for m, e in sorted(self.broken.items()))
            raise UserException(f"Unknown {self.kind} {name!r}; it may live in a module that failed to import: "
                                f"{failures}.")
        raise UnavailableException(self.kind, name, self._entries,
                                   hint="One from outside byzsim needs its plug-in: --plugins or BYZSIM_PLUGINS.")

    def build(self, spec: str, **params: object) -> object:
        """The plug-in a one-step spec names (``dirichlet(alpha=0.3)``), built with its parameters and ``params``."""
        (name, given), = parse_spec(spec, self.kind)
        return self.get(name)(**given, **params)

    def describe(self, name: str) -> str:
        """One line describing ``name``: its registered description, ``summary()`` or docstring."""
        entry = self.get(name)
        if name in self._descriptions:
            return self._descriptions[name]
        summary = getattr(entry, "summary", None)
        if callable(summary):
            return summary()
        doc = (inspect.getdoc(entry) or "").strip()
        return doc.splitlines()[0] if doc else name
