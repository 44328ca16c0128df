"""Shared coordinate-wise statistics over dim 0, all read from one sorted copy.

Each coordinate-wise rule sorts the n values of every coordinate and reads its
statistic off the sorted values. A NaN or an infinity is a value missing from a
Byzantine worker: a coordinate holding m of them is computed on its n - m
finite values with f reduced to max(f - m, 0) (`with_missing`), so a trivially
detectable attack costs no more than sending nothing. The statistics:

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
from collections.abc import Callable

import torch

from aggregators import fused
from aggregators.sorting import sort_rows, sorted_rows

__all__ = ["sort_rows", "median", "trimmed_mean", "mean_around_median", "mean_around_trimmed_mean", "with_missing",
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


def with_missing(compute: Callable[[torch.Tensor, int], tuple[torch.Tensor, bool]], x: torch.Tensor,
                 f: int) -> torch.Tensor:
    """``compute(x, f)`` per coordinate, a non-finite value counting as a value missing from a Byzantine worker.

    ``compute`` gives the statistic of every column and whether columns holding a NaN or an infinity
    came out NaN (the fused kernels mark them so); those columns are computed again on their finite
    values alone, with f reduced by the number of values dropped (never below 0), grouped by that
    number: one call per distinct count, not per coordinate. A column with no finite value is NaN.
    """
    out, marked = compute(x, f)
    bad = out.isnan() if marked else ~torch.isfinite(x).all(dim=0)
    if not bool(bad.any()):
        return out
    columns = bad.nonzero()[:, 0]
    values = x[:, columns]
    missing = (~torch.isfinite(values)).sum(dim=0)
    finite_first = values.nan_to_num(nan=math.inf, posinf=math.inf, neginf=math.inf).sort(dim=0).values
    n = x.shape[0]
    for count in missing.unique().tolist():
        mine = columns[missing == count]
        kept = finite_first[:n - count, missing == count].contiguous()
        out[mine] = compute(kept, max(f - count, 0))[0] if count < n else math.nan
    return out


def _fused_or(x: torch.Tensor, stat: int, eager: Callable[[], torch.Tensor], trim: int = 0,
              k: int = 1) -> tuple[torch.Tensor, bool]:
    """The fused kernel's result (non-finite columns marked NaN), else the eager one's (unmarked)."""
    out = fused.select(x, stat, trim=trim, k=k)
    return (out, True) if out is not None else (eager(), False)


def median(x: torch.Tensor, f: int = 0) -> torch.Tensor:
    """Coordinate-wise median of the finite values; the mean of the two middle values when their count is even."""
    def compute(x: torch.Tensor, f: int) -> tuple[torch.Tensor, bool]:
        n = x.shape[0]
        return _fused_or(x, fused.MEDIAN, lambda: sorted_median(sorted_rows(x, range((n - 1) // 2, n // 2 + 1))))
    return with_missing(compute, x, f)


def trimmed_mean(x: torch.Tensor, f: int) -> torch.Tensor:
    """Coordinate-wise mean after dropping the ``f`` largest and ``f`` smallest values (of the finite ones).

    With ``f = 0`` it is the plain mean (``x.mean(dim=0)``: nothing to sort).
    """
    def compute(x: torch.Tensor, f: int) -> tuple[torch.Tensor, bool]:
        if f == 0:
            return x.mean(dim=0), False
        rows = range(f, x.shape[0] - f)
        return _fused_or(x, fused.TRIMMED_MEAN, lambda: sorted_trimmed_mean(sorted_rows(x, rows), 0), trim=f)
    return with_missing(compute, x, f)


def mean_around_median(x: torch.Tensor, f: int, spread: int = 1) -> torch.Tensor:
    """Per coordinate, the mean of the n - spread f values closest to the median (MeaMed: spread 1; Bulyan's
    second phase: spread 2, over its selected vectors)."""
    def compute(x: torch.Tensor, f: int) -> tuple[torch.Tensor, bool]:
        k = x.shape[0] - spread * f
        return _fused_or(x, fused.CLOSEST_TO_MEDIAN, lambda: _around(x, k, sorted_median), k=k)
    return with_missing(compute, x, f)


def mean_around_trimmed_mean(x: torch.Tensor, f: int) -> torch.Tensor:
    """Per coordinate, the mean of the n - f values closest to the ``f``-trimmed mean (Phocas)."""
    def compute(x: torch.Tensor, f: int) -> tuple[torch.Tensor, bool]:
        k = x.shape[0] - f
        return _fused_or(x, fused.CLOSEST_TO_TRIMMED_MEAN, lambda: _around(x, k, lambda s: sorted_trimmed_mean(s, f)),
                         trim=f, k=k)
    return with_missing(compute, x, f)


def _around(x: torch.Tensor, k: int, centre: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    s = sort_rows(x)
    return sorted_mean_of_closest(s, centre(s), k)
