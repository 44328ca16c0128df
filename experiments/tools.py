"""Errors a user can cause, shared by every byzsim package.

`UserException` carries one clear sentence for the user; the `byzsim` command
prints it without a traceback. `UnavailableException` is raised for unknown
names and lists what is available, suggesting close matches.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["UserException", "UnavailableException", "ArgumentException"]


class UserException(Exception):
    """An error caused by the user's input (bad name, bad n/f, bad file...)."""


_LISTED = 40  # names an unknown-name message lists at most


def did_you_mean(name: str, available: Iterable[str], n: int = 3, cutoff: float = 0.6) -> str:
    """`` Did you mean 'x'?`` naming the ``available`` names closest to a mistyped ``name``; empty when none is."""
    close = difflib.get_close_matches(name, list(available), n=n, cutoff=cutoff)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class UnavailableException(UserException):
    """An unknown name was asked for; the message lists the available ones.

    Args:
        kind: what was looked up, e.g. ``"aggregator"``.
        name: the unknown name.
        available: every valid name.
        hint: a last sentence (e.g. how to load a plug-in that would provide the name).
    """

    def __init__(self, kind: str, name: object, available: Iterable[str], hint: str = ""):
        self.kind = kind
        self.name = name
        self.available = sorted(set(available))
        close = did_you_mean(str(name), self.available)
        shown = self.available[:_LISTED]  # a catalogue of hundreds (torchvision's models) stays one short line
        listing = ", ".join(shown) + (f", ... ({len(self.available)} in all)" if len(self.available) > _LISTED else "")
        listing = listing or "(none)"
        super().__init__(f"Unknown {kind} {name!r}.{close} Available: {listing}.{' ' + hint if hint else ''}")


class ArgumentException(UserException, TypeError):
    """Invalid constructor arguments: a `UserException` that is also a `TypeError`,
    as the seed API documents for `Dataset`."""
