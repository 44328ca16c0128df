"""Shared numerics: pairwise squared distances, non-finite handling, weighted means.

Every distance-based rule (Krum, Multi-Krum, Bulyan, MDA, NNM, geometric
median) calls `squared_distances`, so the two numerical hazards are handled once:

- Cancellation. ``|x_i|^2 + |x_j|^2 - 2 x_i.x_j`` from one float32 Gram matrix
  loses every significant digit when the vectors are nearly identical (relative
  spread below ~1e-3 at d = 1e6), and Krum then picks the wrong winner. The
  distances not clearly above the Gram matrix's rounding error are recomputed:
  a few pairs (typically the f identical copies an attack sends) from their
  exact differences, many pairs (near-identical honest vectors) by one float64
  pass on vectors centred on one of them; both are exact to float64 rounding
  on the spread itself.
- Non-finite input. A vector with a NaN or infinite entry, or so large that its
  squared norm overflows float64, is treated as infinitely far from every other
  vector (its row and column are +inf); distances never contain NaN.
"""
from __future__ import annotations

import math

import torch

__all__ = ["finite_rows", "squared_distances", "squared_distances_to", "combine", "weighted_mean",
           "CHUNK"]

CHUNK = 1 << 16  # coordinates per chunk of the Gram matrix and its float64 recomputation
_ROW_CHUNK = 1 << 14  # coordinates per chunk of the distances to one vector
_TRUST = 64.0  # distances below _TRUST x the Gram rounding estimate are recomputed
_FEW_PAIRS = 2  # up to _FEW_PAIRS * n close pairs are recomputed pair by pair, more in one float64 pass
_PAIR_ELEMENTS = 1 << 21  # elements of the [pairs, chunk] temporary of the pairwise recomputation


def finite_rows(x: torch.Tensor) -> torch.Tensor:
    """Boolean [n]: which rows hold only finite values (one min/max pass, no temporary)."""
    low, high = torch.aminmax(x, dim=1)
    return torch.isfinite(low) & torch.isfinite(high)


def _gram(x: torch.Tensor) -> torch.Tensor:
    """``x @ x.T`` accumulated in float64 over column chunks (faster than one product for small n)."""
    gram = torch.zeros(x.shape[0], x.shape[0], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[1], CHUNK):
        block = x[:, start:start + CHUNK]
        gram += (block @ block.T).double()
    return gram


def _from_gram(gram: torch.Tensor) -> torch.Tensor:
    norms = gram.diagonal()
    return norms[:, None] + norms[None, :] - 2 * gram


def _centred_float64(x: torch.Tensor, good: torch.Tensor) -> torch.Tensor:
    """Float64 squared distances of the good rows, centred on the first good row, chunked."""
    rows = x[good] if not bool(good.all()) else x
    gram = torch.zeros(rows.shape[0], rows.shape[0], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[1], CHUNK):
        block = rows[:, start:start + CHUNK].double()
        block = block - block[:1]
        gram.addmm_(block, block.T)
    out = torch.full((x.shape[0], x.shape[0]), math.inf, dtype=torch.float64, device=x.device)
    index = good.nonzero().flatten()
    out[index[:, None], index[None, :]] = _from_gram(gram)
    return out


def _exact_pairs(x: torch.Tensor, dist: torch.Tensor, close: torch.Tensor) -> None:
    """Recompute the `close` pairs of `dist` in place from their differences, in float64.

    The difference of two close float32 values is exact, so these distances are
    exact to float64 rounding; identical vectors get exactly 0. Coordinates are
    chunked so the [pairs, chunk] temporary stays small.
    """
    i, j = close.triu(1).nonzero(as_tuple=True)
    exact = torch.zeros(i.numel(), dtype=torch.float64, device=x.device)
    chunk = max(1024, _PAIR_ELEMENTS // max(1, i.numel()))
    for start in range(0, x.shape[1], chunk):
        block = x[:, start:start + chunk]
        exact += (block[i] - block[j]).double().square_().sum(dim=1)
    dist[i, j] = exact
    dist[j, i] = exact


def _identical_pairs(x: torch.Tensor, gram: torch.Tensor, close: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Boolean [n, n]: the close pairs that are exact copies of each other, their distances set to 0 in ``dist``.

    Identical rows have identical Gram rows, bit for bit: pairs whose squared norms and
    products with the first row match are candidates, and each candidate is compared
    once with the first row of its kind (one pass per copy, no float64 recomputation).
    The f identical vectors most attacks send end here.
    """
    norms, first = gram.diagonal(), gram[:, 0]
    candidates = close & (norms[:, None] == norms[None, :]) & (first[:, None] == first[None, :])
    same = torch.zeros_like(close)
    if not bool(candidates.any()):
        return same
    seen: set[int] = set()
    for i in candidates.any(dim=1).nonzero().flatten().tolist():  # the rows with a candidate copy: f or so
        if i in seen:
            continue
        group = [i, *(j for j in candidates[i].nonzero().flatten().tolist() if j > i and torch.equal(x[i], x[j]))]
        seen.update(group)
        index = torch.tensor(group, device=x.device)
        same[index[:, None], index[None, :]] = True
    same.fill_diagonal_(False)
    dist[same] = 0.0
    return same


def squared_distances(x: torch.Tensor) -> torch.Tensor:
    """Float64 [n, n] squared Euclidean distances; non-finite rows at +inf, no NaN.

    The diagonal is 0 for finite rows and +inf for non-finite ones.
    """
    n, d = x.shape
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    gram = _gram(work)
    norms = gram.diagonal()
    good = torch.isfinite(norms)
    recompute = False
    if not bool(good.all()):
        # A non-finite norm is either a non-finite entry or an overflow: tell them apart.
        suspects = (~good).nonzero().flatten()
        good[suspects] = finite_rows(work[suspects])
        recompute = bool(good[suspects].any())  # finite rows whose norm overflowed
    dist = _from_gram(gram) if not recompute else None
    if dist is not None:
        eps = torch.finfo(work.dtype).eps
        scale = (norms.double()[:, None] + norms.double()[None, :]) * (_TRUST * eps * math.sqrt(d))
        pair = good[:, None] & good[None, :]
        pair.fill_diagonal_(False)
        close = pair & (dist <= scale)
        if bool(close.any()):
            close &= ~_identical_pairs(work, gram, close, dist)  # exact copies: distance 0, nothing to recompute
        if bool(close.any()):
            count = int(close.sum()) // 2
            if count <= _FEW_PAIRS * n:  # e.g. the f identical copies most attacks send
                _exact_pairs(work, dist, close)
            else:  # many near-identical vectors: one float64 pass over all of them
                recompute = True
    if recompute:
        dist = _centred_float64(work, good)
    dist = torch.nan_to_num(dist, nan=math.inf, posinf=math.inf).clamp_(min=0)
    dist = torch.maximum(dist, dist.T)  # exactly symmetric, so exact ties stay ties
    bad = ~good
    dist[bad, :] = math.inf
    dist[:, bad] = math.inf
    dist.diagonal()[good] = 0.0
    return dist


def squared_distances_to(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Float64 [n] squared distances from each row of ``x`` to ``y`` (None: the origin).

    Computed on differences (no cancellation), over column chunks so no [n, d]
    temporary is made. Non-finite rows give +inf, never NaN; a finite row whose
    squares overflow is redone in float64.
    """
    dist = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[1], _ROW_CHUNK):
        block = x[:, start:start + _ROW_CHUNK]
        if y is not None:
            block = block - y[start:start + _ROW_CHUNK]
        dist += block.square().sum(dim=1)
    suspects = (~torch.isfinite(dist)).nonzero().flatten()
    if suspects.numel():
        rows = x[suspects].double() - (0.0 if y is None else y.double())
        dist[suspects] = rows.square().sum(dim=1)
    return torch.nan_to_num(dist, nan=math.inf, posinf=math.inf)


def combine(weights: torch.Tensor, x: torch.Tensor, good: torch.Tensor | None = None) -> torch.Tensor:
    """``weights @ x`` ([m, n] by [n, d]) where zero weights ignore non-finite rows.

    ``good`` marks the finite rows of ``x``; when None it is only worked out if
    the product is not finite. An output row giving non-zero weight to a
    non-finite input is NaN (it is contaminated).
    """
    weights = weights.to(x.dtype)
    if good is None:
        out = weights @ x
        if bool(finite_rows(out).all()):
            return out
        good = finite_rows(x)
    if bool(good.all()):
        return weights @ x
    out = weights[:, good] @ x[good]
    out[(weights[:, ~good] != 0).any(dim=1)] = math.nan
    return out


def weighted_mean(weights: torch.Tensor, x: torch.Tensor, good: torch.Tensor | None = None) -> torch.Tensor:
    """``sum_i weights_i x_i`` as one vector product, ignoring zero-weight non-finite rows."""
    return combine(weights[None, :], x, good)[0]
