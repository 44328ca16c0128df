"""Sorting the rows of [n, d] along dim 0 with a sorting network of min/max row operations.

`torch.sort(dim=0)` walks every column with a stride of d and is the slowest
step of every coordinate-wise rule. A comparator network (Batcher's odd-even
merge sort, pruned to n wires) sorts all d columns at once with
``torch.minimum``/``torch.maximum`` on whole rows; processing the coordinates in
cache-sized chunks makes it several times faster than `torch.sort` on CPU for
the n of federated workloads. NaN is ordered like +inf (as torch.sort does):
min/max spread a NaN to every output of its column, and those columns are
re-sorted with `torch.sort`.
"""
from __future__ import annotations

import functools

import torch

__all__ = ["sort_rows", "network"]

MAX_NETWORK_ROWS = 128  # above this, torch.sort
CHUNK = 1 << 15  # coordinates per chunk (n rows x CHUNK floats stay in cache)


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


def _network_sort(x: torch.Tensor) -> torch.Tensor:
    n, d = x.shape
    out = torch.empty_like(x)
    pairs = network(n)
    for start in range(0, d, CHUNK):
        rows = list(x[:, start:start + CHUNK].unbind(0))
        for i, j in pairs:
            rows[i], rows[j] = torch.minimum(rows[i], rows[j]), torch.maximum(rows[i], rows[j])
        torch.stack(rows, out=out[:, start:start + CHUNK])
    return out


def sort_rows(x: torch.Tensor) -> torch.Tensor:
    """``x.sort(dim=0).values``, faster; NaN sorts above +inf."""
    n = x.shape[0]
    if n < 2 or n > MAX_NETWORK_ROWS or x.device.type != "cpu":
        return x.sort(dim=0).values
    out = _network_sort(x)
    nan_columns = torch.isnan(out[0]).nonzero().flatten()
    if nan_columns.numel():
        out[:, nan_columns] = x[:, nan_columns].sort(dim=0).values
    return out
