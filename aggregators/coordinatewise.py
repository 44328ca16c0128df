"""Shared coordinate-wise statistics over dim 0, all read from one sorted copy.

Each coordinate-wise rule sorts its [n, d] input once along dim 0 (`sort_rows`,
a sorting network several times faster than `torch.sort` on CPU) and reads
its statistic off the sorted rows. NaN sorts above +inf, so a NaN entry acts
as an extreme value that the rules trim away instead of propagating.
"""
from __future__ import annotations

import math

import torch

from aggregators.sorting import sort_rows, sorted_rows

__all__ = ["sort_rows", "median", "trimmed_mean", "sorted_median", "sorted_trimmed_mean",
           "sorted_mean_of_closest"]


def sorted_median(s: torch.Tensor) -> torch.Tensor:
    """Median of each column of the column-sorted ``s``; the mean of the two middle values for even n."""
    n = s.shape[0]
    if n % 2:
        return s[n // 2].clone()
    return (s[n // 2 - 1] + s[n // 2]) / 2


def sorted_trimmed_mean(s: torch.Tensor, trim: int) -> torch.Tensor:
    """Mean of rows trim..n-trim-1 of the column-sorted ``s`` (never "sum minus extremes")."""
    return s[trim:s.shape[0] - trim].mean(dim=0)


def sorted_mean_of_closest(s: torch.Tensor, centre: torch.Tensor, k: int) -> torch.Tensor:
    """Per column of the column-sorted ``s``, the mean of the k values closest to ``centre``.

    The k closest values of a sorted column are a window s[i:i+k], i <= n - k;
    the chosen window has the smallest largest distance to the centre (the
    first one on ties). Rows n-k..k-1 lie in every window; the others are
    added where the chosen window covers them (or, for small k, the k values
are gathered). Whole-row operations only.
    """
    n = s.shape[0]
    if k == n:
        return s.mean(dim=0)
    best = torch.full_like(centre, math.inf)
    start = torch.zeros_like(centre, dtype=torch.long)
    for i in range(n - k + 1):
        cost = torch.maximum(centre - s[i], s[i + k - 1] - centre).nan_to_num_(nan=math.inf)
        better = cost < best
        best = torch.where(better, cost, best)
        start.masked_fill_(better, i)
    common = range(n - k, k)  # rows inside every window (empty when 2k <= n)
    if k <= 3 * (n - len(common)):  # few values: gather them
        total = torch.zeros_like(centre)
        for offset in range(k):
            total += s.gather(0, (start + offset)[None])[0]
        return total / k
    total = s[common.start:common.stop].sum(dim=0)
    for j in range(n):
        if j not in common:
            total += torch.where((start <= j) & (start > j - k), s[j], 0.0)
    return total / k


def median(x: torch.Tensor) -> torch.Tensor:
    """Coordinate-wise median; the mean of the two middle values when n is even."""
    n = x.shape[0]
    middle = sorted_rows(x, range((n - 1) // 2, n // 2 + 1))
    return middle[0].clone() if n % 2 else (middle[0] + middle[1]) / 2


def trimmed_mean(x: torch.Tensor, trim: int) -> torch.Tensor:
    """Coordinate-wise mean after dropping the ``trim`` largest and ``trim`` smallest values."""
    if trim == 0:
        return x.mean(dim=0)
    return sorted_rows(x, range(trim, x.shape[0] - trim)).mean(dim=0)
