"""Plug-ins from outside the package: modules or files that register rules, attacks, datasets, models...

A plug-in is any Python module that registers parts with the usual
decorators (``@aggregators.register("normfilter")``). Three sources:

- named explicitly: `load` takes module names (``mylab.rules``) or file paths
  (``examples/plugins/rules.py``), one or several separated by commas;
  ``byzsim ... --plugins SPEC`` calls it;
- the environment variable ``BYZSIM_PLUGINS``, the same syntax;
- installed packages declaring an entry point in the group ``byzsim.plugins``
  (the packaging convention pytest's plug-ins use): the entry point names a
  module, or a function to call.

`autoload` loads the last two once per process; every registry calls it on
first use, so such plug-ins are there wherever a name is looked up: `byzsim
train`, `report`, `reproduce`, a grid's worker processes and the Python API.
`load` also adds what it loads to ``BYZSIM_PLUGINS`` of this process, so the
processes it starts (a grid's workers) load the same. `loaded` says what each
plug-in registered, which a grid records beside its runs (``plugins.json``).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from experiments.tools import UserException

__all__ = ["ENV", "GROUP", "autoload", "load", "loaded", "parse"]

ENV, GROUP = "BYZSIM_PLUGINS", "byzsim.plugins"

_LOADED: dict[str, dict[str, list[str]]] = {}  # plug-in -> {kind: names it registered}
_AUTOLOADED = False


def parse(text: str | Iterable[str] | None) -> list[str]:
    """Plug-in specs from ``"a.py,mylab.rules"`` (commas or the OS path separator) or a list of them."""
    if text is None:
        return []
    items = [text] if isinstance(text, str) else list(text)
    specs = []
    for item in items:
        for part in item.replace(os.pathsep, ",").split(","):
            if part.strip():
                specs.append(part.strip())
    return specs


def load(specs: str | Iterable[str] | None) -> list[str]:
    """Import each plug-in once (module name or .py file); return the specs, as loaded. Also sets ``BYZSIM_PLUGINS``."""
    done = []
    for spec in parse(specs):
        key = _key(spec)
        if key not in _LOADED:
            _LOADED[key] = _registering(lambda: _import(spec))
        done.append(key)
    if done:
        present = parse(os.environ.get(ENV))
        os.environ[ENV] = ",".join(present + [key for key in done if key not in present])
    return done


def autoload() -> None:
    """Load the plug-ins of ``BYZSIM_PLUGINS`` and of the ``byzsim.plugins`` entry points, once per process."""
    global _AUTOLOADED
    if _AUTOLOADED:
        return
    _AUTOLOADED = True
    load(os.environ.get(ENV))
    for point in importlib.metadata.entry_points(group=GROUP):
        key = f"entry point {point.name} ({point.value})"
        if key in _LOADED:
            continue
        try:
            _LOADED[key] = _registering(lambda: _call(point.load()))
        except UserException:
            raise
        except Exception as err:
            raise UserException(f"Plug-in {key} failed to load: {type(err).__name__}: {err}") from None


def loaded() -> dict[str, dict[str, list[str]]]:
    """Each plug-in loaded in this process and the names it registered, by kind (``{"aggregator": [...]}``)."""
    return {key: dict(names) for key, names in _LOADED.items()}


def _key(spec: str) -> str:
    """A file as its resolved path (one plug-in whatever the working folder), a module as its name."""
    return str(Path(spec).resolve()) if spec.endswith(".py") else spec


def _import(spec: str) -> None:
    if not spec.endswith(".py"):
        try:
            importlib.import_module(spec)
        except ModuleNotFoundError as err:
            if err.name and spec.startswith(err.name):
                raise UserException(f"Plug-in module {spec!r} was not found (a .py file needs its path; a module "
                                    "must be importable, e.g. installed or on PYTHONPATH).") from None
            raise UserException(f"Plug-in {spec!r} failed to import: {type(err).__name__}: {err}") from None
        except Exception as err:
            raise UserException(f"Plug-in {spec!r} failed to import: {type(err).__name__}: {err}") from None
        return
    path = Path(spec).resolve()
    if not path.is_file():
        raise UserException(f"Plug-in file {spec!r} does not exist.")
    name = f"byzsim_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        raise UserException(f"Plug-in {spec!r} failed to import: {type(err).__name__}: {err}") from None


def _call(target: object) -> None:
    """An entry point names a module (imported: done) or a function that registers (called)."""
    if callable(target) and not isinstance(target, type(sys)):
        target()


def _registering(action) -> dict[str, list[str]]:
    """Run ``action`` and return what it added to the registries, by kind."""
    from experiments.registry import Registry  # lazy: the registry calls autoload, this module reads registries
    before = {id(r): set(r.entries()) for r in Registry.instances}
    action()
    added: dict[str, list[str]] = {}
    for registry in Registry.instances:
        new = sorted(set(registry.entries()) - before.get(id(registry), set()))
        if new:
            added.setdefault(registry.kind, []).extend(new)
    return added
