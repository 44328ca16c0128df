"""`weakly`: hold a callback without holding its owner, so that an object and the parts it hands its own methods
make no reference cycle (a cycle keeps a finished run's model and data alive until the garbage collector's next
full pass; `tests/simulator/test_simcore_cycles.py`)."""
from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import TypeVar

__all__ = ["weakly"]

F = TypeVar("F", bound=Callable)


def weakly(callback: F) -> Callable[[], F]:
    """A function giving ``callback`` back: a bound method through a weak reference to its object, anything else
    (a plain function, a lambda of a test) as it is."""
    if inspect.ismethod(callback):
        return weakref.WeakMethod(callback)
    return lambda: callback
