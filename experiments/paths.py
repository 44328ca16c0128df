"""Where datasets live by default."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["ENV_DATA", "default_root", "download_root"]

ENV_DATA = "BYZSIM_DATA"
_CACHE = Path("~/.cache/byzsim/data")


def default_root() -> Path:
    """`$BYZSIM_DATA` if set, else ``~/.cache/byzsim/data`` if it exists, else the temp dir."""
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    cache = _CACHE.expanduser()
    return cache if cache.is_dir() else Path(tempfile.gettempdir())


def download_root() -> Path:
    """Where downloads go by default: `$BYZSIM_DATA` if set, else ``~/.cache/byzsim/data`` (created by the caller),
    which `default_root` then finds."""
    env = os.environ.get(ENV_DATA)
    return Path(env).expanduser() if env else _CACHE.expanduser()
