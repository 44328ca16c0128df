"""Sorting the rows of [n, d] along dim 0 with a sorting network of min/max row operations.

`torch.sort(dim=0)` walks every column with a stride of d and is the slowest
step of every coordinate-wise rule. A comparator network (Batcher's odd-even
merge sort, pruned to n wires) sorts all d columns at once with
``torch.minimum``/``torch.maximum`` on whole rows; processing the coordinates in
cache-sized chunks makes it several times faster than `torch.sort` on CPU for
the n of federated workloads. NaN is ordered like +inf (as torch.sort does):
min/max spread a NaN to every output of its column, and those columns are
re-sorted with `torch.sort`.

This is the eager path. On CPU, `aggregators.fused` runs the same pruned
networks compiled, one pass over the input, when its kernels are built.
"""
from __future__ import annotations

import functools

import torch

__all__ = ["sort_rows", "sorted_rows", "network", "pruned_network"]

MAX_NETWORK_ROWS = 128  # above this, torch.sort
CHUNK = 1 << 14  # coordinates per chunk (n rows x CHUNK floats stay in cache)


@functools.lru_cache(maxsize=None)
def network(n: int) -> tuple[tuple[int, int], ...]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort on n wires."""
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p) and b < n:
                        pairs.append((a, b))
            k //= 2
        p *= 2
    return tuple(pairs)


@functools.lru_cache(maxsize=None)
def pruned_network(n: int, wanted: tuple[int, ...]) -> tuple[tuple[int, int, bool, bool], ...]:
    """The comparators that the sorted positions ``wanted`` depend on, as (i, j, need_min, need_max)."""
    needed, kept = set(wanted), []
    for i, j in reversed(network(n)):
        if i in needed or j in needed:
            kept.append((i, j, i in needed, j in needed))
            needed |= {i, j}
    return tuple(reversed(kept))


def _network_select(x: torch.Tensor, wanted: tuple[int, ...]) -> torch.Tensor:
    n, d = x.shape
    out = torch.empty(len(wanted), d, dtype=x.dtype, device=x.device)
    pairs = pruned_network(n, wanted)
    for start in range(0, d, CHUNK):
        rows = list(x[:, start:start + CHUNK].unbind(0))
        for i, j, need_min, need_max in pairs:
            low = torch.minimum(rows[i], rows[j]) if need_min else None
            if need_max:
                rows[j] = torch.maximum(rows[i], rows[j])
            rows[i] = low
        torch.stack([rows[k] for k in wanted], out=out[:, start:start + CHUNK])
    return out


def sorted_rows(x: torch.Tensor, wanted: range | None = None) -> torch.Tensor:
    """Rows ``wanted`` (default: all) of ``x.sort(dim=0).values``, faster; NaN sorts above +inf.

    Only the comparators those positions depend on are run (e.g. the median
    needs about 80% of them).
    """
    n = x.shape[0]
    wanted = range(n) if wanted is None else wanted
    if n < 2 or n > MAX_NETWORK_ROWS or x.device.type != "cpu":
        return x.sort(dim=0).values[wanted.start:wanted.stop]
    out = _network_select(x, tuple(wanted))
    nan_columns = torch.isnan(out[0]).nonzero().flatten()
    if nan_columns.numel():
        out[:, nan_columns] = x[:, nan_columns].sort(dim=0).values[wanted.start:wanted.stop]
    return out


def sort_rows(x: torch.Tensor) -> torch.Tensor:
    """``x.sort(dim=0).values``, faster; NaN sorts above +inf."""
    return sorted_rows(x)
