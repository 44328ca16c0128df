"""Independent, reproducible random streams derived from one run seed."""
from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for `stream`, a pure function of (seed, stream)."""
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def generator(seed: int, stream: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh torch.Generator for `stream` (e.g. "aggregator", "attack")."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, stream))
