"""Fused per-coordinate selection on CPU: one compiled pass instead of a network of torch calls.

The eager coordinate-wise path (`aggregators.sorting`) runs a sorting network
as a few hundred ``torch.minimum``/``torch.maximum`` calls over whole rows,
each writing a temporary. The kernels of ``csrc/select.cpp`` run the same
network per block of coordinates without leaving the core, reduce each
coordinate to its statistic there, and so read the [n, d] input once and
write only the [d] output; blocks run on torch's OpenMP threads. Their
results are bit for bit the eager path's (conventions in
`aggregators.coordinatewise`). Two kernels (`aggregators.kernels` builds them):

- the generic one (any n <= 128; rows in an L1 buffer), one build of ~0.5 s;
- a specialised one per (dtype, n, statistic, trim, k), n <= 64, with the
  network as straight-line code on rows held in registers: 2-3x faster than
  the generic one, 0.3-3 s to build each.

``BYZSIM_FUSED`` chooses when they are used (the fastest one available wins):

- unset or ``auto`` (default): only kernels already in the cache; nothing is
  compiled, so a short run never pays a build;
- ``1``: on first use, build the kernel a problem needs when it is missing
  (the specialised one; the generic one for n > 64 or if that fails), once
  per machine: the first call of a run pays 0.3-3 s;
- ``0``: never (the eager path);
- ``generic``: as auto, but never a specialised kernel (to compare the two).

Build ahead of time with ``python -m aggregators.fused --build`` (the generic
kernel) or ``--build --n 25 --f 5`` (also the specialised kernels of median,
trmean, meamed, phocas and bulyan at that n and f). Any failure to build, load
or run a kernel falls back to the eager path with a debug line on the
``byzsim`` logger; GPU tensors, dtypes other than float32/float64 and inputs
that need gradients always take the eager path. Importing this module
compiles and loads nothing.
"""
from __future__ import annotations

import argparse
import ctypes
import functools
import logging
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from aggregators import kernels
from aggregators.sorting import MAX_NETWORK_ROWS, pruned_network

__all__ = ["MEDIAN", "TRIMMED_MEAN", "CLOSEST_TO_MEDIAN", "CLOSEST_TO_TRIMMED_MEAN", "MAX_SPECIALISED_ROWS",
           "select", "available", "mode", "build"]

MEDIAN, TRIMMED_MEAN, CLOSEST_TO_MEDIAN, CLOSEST_TO_TRIMMED_MEAN = 0, 1, 2, 3
MAX_SPECIALISED_ROWS = 64  # above, straight-line networks take too long to compile: the generic kernel
_DTYPES = {torch.float32: (0, "float32"), torch.float64: (1, "float64")}
_GENERIC_ARGS = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                 ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int]
_SPECIALISED_ARGS = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int]

logger = logging.getLogger("byzsim")
_loaded: dict[tuple, ctypes._CFuncPtr | None] = {}  # per library: its function, or None after a failure
_paths: dict[tuple, Path] = {}  # per library: where it is cached


def mode() -> str:
    """``"auto"``, ``"1"``, ``"0"`` or ``"generic"``, read from ``BYZSIM_FUSED`` on every call (unknown: auto)."""
    value = os.environ.get("BYZSIM_FUSED", "auto").strip().lower()
    return {"1": "1", "on": "1", "true": "1", "yes": "1", "0": "0", "off": "0", "false": "0", "no": "0",
            "generic": "generic"}.get(value, "auto")


def _positions(stat: int, n: int, trim: int) -> tuple[int, ...]:
    """The sorted positions statistic ``stat`` reads."""
    if stat == MEDIAN:
        return tuple(range((n - 1) // 2, n // 2 + 1))
    if stat == TRIMMED_MEAN:
        return tuple(range(trim, n - trim))
    return tuple(range(n))


@functools.lru_cache(maxsize=None)
def _comparators(n: int, positions: tuple[int, ...]) -> torch.Tensor:
    """The eager path's pruned network for ``positions``, as [pairs, 2] int32."""
    pairs = [(i, j) for i, j, _, _ in pruned_network(n, positions)]
    return torch.tensor(pairs, dtype=torch.int32).reshape(-1, 2).contiguous()


@functools.lru_cache(maxsize=None)
def _specialised_source(dtype: str, n: int, stat: int, trim: int, k: int) -> str:
    return kernels.specialised_source(dtype, n, stat, trim, k, _comparators(n, _positions(stat, n, trim)).tolist())


def _kernel(source: str, symbol: str, arguments: list, chosen: str) -> ctypes._CFuncPtr | None:
    """Function ``symbol`` of the library built from ``source``: from the cache, built first in mode 1, or None.

    Looked up by the cache's environment and the source (one dictionary look-up per call once loaded).
    """
    environ = os.environ
    key = (environ.get("BYZSIM_CACHE_DIR"), environ.get("XDG_CACHE_HOME"), environ.get("HOME"), source)
    if key in _loaded:
        return _loaded[key]
    path = _paths.get(key) or _paths.setdefault(key, kernels.library_path(source))
    if chosen != "1" and not os.path.exists(path):
        return None  # looked up again next call (a stat): it picks up a build made meanwhile
    function = None
    try:
        if not path.exists():
            started = time.perf_counter()
            kernels.build(source)
            logger.debug("fused selection: built %s in %.1f s", path, time.perf_counter() - started)
        function = getattr(kernels.load(path), symbol)
        function.argtypes, function.restype = arguments, ctypes.c_int
        logger.debug("fused selection: using %s", path)
    except Exception as error:  # noqa: BLE001 - any failure means the eager path, never a broken run
        logger.debug("fused selection unavailable, using the eager path: %s", error)
        function = None
    _loaded[key] = function
    return function


def _specialised(dtype: str, n: int, stat: int, trim: int, k: int, chosen: str) -> ctypes._CFuncPtr | None:
    if n > MAX_SPECIALISED_ROWS or chosen in ("0", "generic"):
        return None
    return _kernel(_specialised_source(dtype, n, stat, trim, k), "byzsim_specialised", _SPECIALISED_ARGS, chosen)


def _generic(chosen: str) -> ctypes._CFuncPtr | None:
    return None if chosen == "0" else _kernel(kernels.generic_source(), "byzsim_select", _GENERIC_ARGS, chosen)


def _key(stat: int, trim: int, k: int) -> tuple[int, int, int]:
    """(stat, trim, k) with the parameters the statistic ignores set to fixed values (shared kernels)."""
    if stat == MEDIAN:
        return stat, 0, 1
    if stat == TRIMMED_MEAN:
        return stat, trim, 1
    return stat, trim if stat == CLOSEST_TO_TRIMMED_MEAN else 0, k


def available(dtype: torch.dtype = torch.float32, n: int | None = None, stat: int = MEDIAN, trim: int = 0,
              k: int = 1) -> str | None:
    """Which kernel `select` would use now: ``"specialised"``, ``"generic"`` or None (eager).

    Without ``n``, whether the generic kernel is there. Loads (and in mode 1
    builds) the kernel, as a call would.
    """
    chosen = mode()
    if n is not None and _specialised(_DTYPES[dtype][1], n, *_key(stat, trim, k), chosen) is not None:
        return "specialised"
    return "generic" if _generic(chosen) is not None else None


def select(x: torch.Tensor, stat: int, trim: int = 0, k: int = 1) -> torch.Tensor | None:
    """Statistic ``stat`` of every column of ``x`` [n, d], or None when no kernel applies (then: eager).

    ``trim``: values dropped at each end (trimmed mean; Phocas' centre);
    ``k``: how many values closest to the centre are averaged.
    """
    n = x.shape[0] if x.dim() == 2 else 0
    if (x.dim() != 2 or x.device.type != "cpu" or x.dtype not in _DTYPES or not 1 <= n <= MAX_NETWORK_ROWS
            or x.shape[1] < 1 or not 0 <= 2 * trim < n or not 1 <= k <= n
            or (x.requires_grad and torch.is_grad_enabled())):
        return None
    chosen = mode()
    stat, trim, k = _key(stat, trim, k)
    code, dtype = _DTYPES[x.dtype]
    if x.stride(1) != 1 or x.stride(0) < x.shape[1]:
        x = x.contiguous()
    out = torch.empty(x.shape[1], dtype=x.dtype)
    threads = torch.get_num_threads()
    specialised = _specialised(dtype, n, stat, trim, k, chosen)
    if specialised is not None:
        status = specialised(x.data_ptr(), x.shape[1], x.stride(0), out.data_ptr(), threads)
    else:
        generic = _generic(chosen)
        if generic is None:
            return None
        pairs = _comparators(n, _positions(stat, n, trim))
        status = generic(code, x.data_ptr(), n, x.shape[1], x.stride(0), out.data_ptr(), pairs.data_ptr(),
                         pairs.shape[0], stat, trim, k, threads)
    if status != 0:
        logger.debug("fused selection refused n=%d stat=%d (status %d), using the eager path", n, stat, status)
        return None
    return out


def build(n: int | None = None, f: int | None = None, dtype: torch.dtype = torch.float32) -> list[Path]:
    """Build the generic kernel and, with ``n`` and ``f``, the specialised ones of every coordinate-wise rule.

    Those are median, trmean, meamed and phocas at (n, f), and Bulyan's second
    phase (n - 2f rows, n - 4f kept) when n >= 4f + 3. Builds run in parallel.
    Raises `RuntimeError` when one fails.
    """
    sources = [kernels.generic_source()]
    if n is not None and f is not None:
        name = _DTYPES[dtype][1]
        problems = [(n, MEDIAN, 0, 1), (n, CLOSEST_TO_MEDIAN, 0, n - f), (n, CLOSEST_TO_TRIMMED_MEAN, f, n - f)]
        problems += [(n, TRIMMED_MEAN, f, 1)] if f > 0 else []
        problems += [(n - 2 * f, CLOSEST_TO_MEDIAN, 0, n - 4 * f)] if n >= 4 * f + 3 else []
        sources += [_specialised_source(name, rows, stat, trim, k) for rows, stat, trim, k in problems
                    if 1 <= rows <= MAX_SPECIALISED_ROWS]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        paths = list(pool.map(kernels.build, sources))
    for key in [key for key in _loaded if key[-1] in sources]:
        del _loaded[key]  # a failed load is retried after a build
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m aggregators.fused --build [--n N --f F]``: compile the kernels ahead of time."""
    parser = argparse.ArgumentParser(prog="python -m aggregators.fused", description=main.__doc__)
    parser.add_argument("--build", action="store_true", help="compile the generic kernel (once per machine)")
    parser.add_argument("--n", type=int, help="with --build: also the specialised kernels for n workers...")
    parser.add_argument("--f", type=int, help="...and f Byzantine ones")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args(argv)
    if (args.n is None) != (args.f is None) or (args.n is not None and not 0 <= 2 * args.f < args.n):
        parser.error("--n and --f go together, with 0 <= 2f < n")
    dtype = getattr(torch, args.dtype)
    if args.build:
        started = time.perf_counter()
        try:
            paths = build(args.n, args.f, dtype)
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            print(f"build failed: {error}")
            return 1
        print(f"{len(paths)} kernel(s) in {kernels.cache_dir()} ({time.perf_counter() - started:.1f} s)")
    print(f"BYZSIM_FUSED={mode()}; cache {kernels.cache_dir()}; generic kernel "
          f"{'in use' if available() else 'not in use'}"
          + (f"; median at n={args.n}: {available(dtype, args.n) or 'eager'}" if args.n else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
