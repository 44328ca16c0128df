"""``none``: no privacy mechanism, the default: a step is exactly what it was before privacy existed."""
from __future__ import annotations

from simulator.core.privacy import Privacy, register


@register("none")
class NoPrivacy(Privacy):
    """no privacy mechanism (the default)"""
