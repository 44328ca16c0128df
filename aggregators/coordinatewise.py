"""Shared coordinate-wise statistics over dim 0, all read from one sorted copy.

Each coordinate-wise rule sorts the n values of every coordinate (NaN above
+inf, so a NaN entry is an extreme value that gets trimmed instead of
propagating) and reads its statistic off the sorted values:

- `median`: the middle value, or the mean of the two middle values (even n);
- `trimmed_mean`: the mean of the values left after dropping ``trim`` at each end;
- `mean_around_median` / `mean_around_trimmed_mean`: the mean of the k values
  closest to that centre (MeaMed, Bulyan's second phase; Phocas).

On CPU they run as one fused pass (`aggregators.fused`) when its compiled
kernel is available, else eagerly: a sorting network of whole-row torch
operations (`aggregators.sorting`). The two paths return the same bits, so
their conventions are fixed here, in the eager code:

- every sum runs sequentially over the kept sorted values, in ascending order,
  and is then divided by their count (a window of closest values is summed
  starting from +0); never "sum minus the extremes";
- every result gets ``+ 0``: a zero result is +0 (the sorting network may
  leave equal zeros of either sign in either order).
"""
from __future__ import annotations

import math

import torch

from aggregators import fused
from aggregators.sorting import sort_rows, sorted_rows

__all__ = ["sort_rows", "median", "trimmed_mean", "mean_around_median", "mean_around_trimmed_mean",
           "sorted_median", "sorted_trimmed_mean", "sorted_mean_of_closest"]


def sorted_median(s: torch.Tensor) -> torch.Tensor:
    """Median of each column of the column-sorted ``s``; the mean of the two middle values for even n."""
    n = s.shape[0]
    if n % 2:
        return s[n // 2] + 0.0
    return (s[n // 2 - 1] + s[n // 2]) / 2 + 0.0


def sorted_trimmed_mean(s: torch.Tensor, trim: int) -> torch.Tensor:
    """Mean of rows trim..n-trim-1 of the column-sorted ``s``, summed in ascending order.

    ``((rows[0] + rows[1]) + ...) / len(rows)``, left to right: the fused kernel's order.
    """
    rows = s[trim:s.shape[0] - trim]
    total = rows[0].clone()
    for row in rows[1:]:
        total += row
    return total.div_(rows.shape[0]) + 0.0


def _closest_window(s: torch.Tensor, centre: torch.Tensor, k: int) -> torch.Tensor:
    """Per column, the start i of the window s[i:i+k] with the smallest larger distance to ``centre``.

    The first such window on ties; NaN distances count as +inf (and +inf as the
    largest finite value, so a window with an infinite value beats one with a NaN).
    """
    best = torch.full_like(centre, math.inf)
    start = torch.zeros_like(centre, dtype=torch.long)
    for i in range(s.shape[0] - k + 1):
        cost = torch.maximum(centre - s[i], s[i + k - 1] - centre).nan_to_num_(nan=math.inf)
        better = cost < best
        best = torch.where(better, cost, best)
        start.masked_fill_(better, i)
    return start


def sorted_mean_of_closest(s: torch.Tensor, centre: torch.Tensor, k: int) -> torch.Tensor:
    """Per column of the column-sorted ``s``, the mean of the k values closest to ``centre``.

    The k closest values of a sorted column are a window s[i:i+k], i <= n - k;
    the chosen window has the smallest largest distance to the centre (the
    first one on ties). The window is summed from +0 in ascending order: for
    small k by gathering its values, else by adding every row where the window
    covers it (rows n-k..k-1 lie in every window). Whole-row operations only.
    """
    n = s.shape[0]
    start = _closest_window(s, centre, k)
    total = torch.zeros_like(centre)
    common = range(n - k, k)  # rows inside every window (empty when 2k <= n)
    if k <= 3 * (n - len(common)):  # few values: gather them
        for offset in range(k):
            total += s.gather(0, (start + offset)[None])[0]
    else:
        for j in range(n):
            total += s[j] if j in common else torch.where((start <= j) & (start > j - k), s[j], 0.0)
    return total.div_(k) + 0.0


def median(x: torch.Tensor) -> torch.Tensor:
    """Coordinate-wise median; the mean of the two middle values when n is even."""
    out = fused.select(x, fused.MEDIAN)
    if out is not None:
        return out
    n = x.shape[0]
    return sorted_median(sorted_rows(x, range((n - 1) // 2, n // 2 + 1)))


def trimmed_mean(x: torch.Tensor, trim: int) -> torch.Tensor:
    """Coordinate-wise mean after dropping the ``trim`` largest and ``trim`` smallest values.

    With ``trim = 0`` it is the plain mean (``x.mean(dim=0)``: nothing to sort).
    """
    if trim == 0:
        return x.mean(dim=0)
    out = fused.select(x, fused.TRIMMED_MEAN, trim=trim)
    if out is not None:
        return out
    return sorted_trimmed_mean(sorted_rows(x, range(trim, x.shape[0] - trim)), 0)


def mean_around_median(x: torch.Tensor, k: int) -> torch.Tensor:
    """Per coordinate, the mean of the k values closest to the median (MeaMed; Bulyan's second phase)."""
    out = fused.select(x, fused.CLOSEST_TO_MEDIAN, k=k)
    if out is not None:
        return out
    s = sort_rows(x)
    return sorted_mean_of_closest(s, sorted_median(s), k)


def mean_around_trimmed_mean(x: torch.Tensor, trim: int, k: int) -> torch.Tensor:
    """Per coordinate, the mean of the k values closest to the ``trim``-trimmed mean (Phocas)."""
    out = fused.select(x, fused.CLOSEST_TO_TRIMMED_MEAN, trim=trim, k=k)
    if out is not None:
        return out
    s = sort_rows(x)
    return sorted_mean_of_closest(s, sorted_trimmed_mean(s, trim), k)
