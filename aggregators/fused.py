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

``BYZSIM_FUSED`` chooses when they are built and used (the fastest one
available wins):

- unset or ``auto`` (default): a kernel missing from the cache is built in the
  background on first use, once per machine (a detached compiler process,
  one at a time per run, the generic kernel first; those still waiting when
  the run ends start then), into the cache every run shares; until it is
  there the call takes the next best path (the generic kernel, else the
  eager one). The first run on a machine never waits for a
  compiler, picks each kernel up as soon as it is built, and later runs find
  them all built. Since every path gives the same bits, a run's results do not
  depend on when its kernels arrive;
- ``1``: a missing kernel is built before the call that needs it (the first
  call of a run then takes 0.3-3 s, once per machine);
- ``cached``: only kernels already built; nothing is compiled;
- ``0``: never (the eager path);
- ``generic``: as auto, but never a specialised kernel (to compare the two).

Build ahead of time with ``python -m aggregators.fused --build`` (the generic
kernel) or ``--build --n 25 --f 5`` (also the specialised kernels of median,
trmean, meamed, phocas and bulyan at that n and f). Without a C++ compiler
(``g++``, or ``$CXX``) every call takes the eager path and the run says so in
one warning line on the ``byzsim`` logger; so does a build that failed (its
message is kept in the cache, and automatic builds do not retry it). Any other
failure to load or run a kernel falls back to the eager path with a debug
line. GPU tensors, dtypes other than float32/float64 and inputs that need
gradients always take the eager path. Importing this module compiles and
loads nothing.
"""
from __future__ import annotations

import argparse
import atexit
import ctypes
import functools
import logging
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from aggregators import kernels
from aggregators.sorting import MAX_NETWORK_ROWS, pruned_network

__all__ = ["MEDIAN", "TRIMMED_MEAN", "CLOSEST_TO_MEDIAN", "CLOSEST_TO_TRIMMED_MEAN", "MAX_SPECIALISED_ROWS",
           "select", "available", "cached", "mode", "build", "wait", "built_here", "summary"]

MEDIAN, TRIMMED_MEAN, CLOSEST_TO_MEDIAN, CLOSEST_TO_TRIMMED_MEAN = 0, 1, 2, 3
MAX_SPECIALISED_ROWS = 64  # above, straight-line networks take too long to compile: the generic kernel
# Mode auto builds a specialised kernel only for inputs at least this wide: narrower ones (the few columns
# holding a NaN, computed again on their finite values) take the generic kernel rather than ask for a build
# per count of finite values.
WORTH_A_BUILD = 4096
_DTYPES = {torch.float32: (0, "float32"), torch.float64: (1, "float64")}
_GENERIC_ARGS = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                 ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int]
_SPECIALISED_ARGS = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int]

logger = logging.getLogger("byzsim")
_loaded: dict[tuple, ctypes._CFuncPtr | None] = {}  # per library: its function, or None after a failure
_paths: dict[tuple, Path] = {}  # per library: where it is cached


@dataclass
class _Background:
    """This process's background builds (mode auto): one at a time, in the order asked (the generic first)."""

    queue: list[str] = field(default_factory=list)  # sources waiting for their build to start
    asked: set[Path] = field(default_factory=set)  # libraries asked for once already
    running: tuple[subprocess.Popen, str, float] | None = None  # the build under way: process, source, start
    done: list[tuple[str, float, bool]] = field(default_factory=list)  # (kernel, seconds, built) of finished ones
    said: set[str] = field(default_factory=set)  # warnings given (one line each per process)
    asked_any: bool = False  # whether the exit hook that starts the builds still waiting is registered


_background = _Background()


def mode() -> str:
    """``"auto"``, ``"1"``, ``"cached"``, ``"0"`` or ``"generic"``, read from ``BYZSIM_FUSED`` on every call
    (unknown: auto)."""
    value = os.environ.get("BYZSIM_FUSED", "auto").strip().lower()
    return {"1": "1", "on": "1", "true": "1", "yes": "1", "0": "0", "off": "0", "false": "0", "no": "0",
            "generic": "generic", "cached": "cached"}.get(value, "auto")


def _warn_once(key: str, message: str, *args: object) -> None:
    """One warning line per process for ``key``: the run goes on, on the eager path, with the same results."""
    if key not in _background.said:
        _background.said.add(key)
        logger.warning(message, *args)


def _no_compiler() -> None:
    _warn_once("compiler", "fused kernels: no C++ compiler (%r not found; set CXX to name one): the coordinate-wise "
               "rules take the eager path, with the same results (docs/aggregators.md)", kernels.compiler())


def _ask(source: str, path: Path) -> None:
    """Mode auto: have ``source`` built in the background, once per process (the generic kernel goes first)."""
    if path not in _background.asked:
        _background.asked.add(path)
        if not kernels.have_compiler():
            _no_compiler()
            return
        if kernels.failure_path(path).exists():
            _warn_once(f"failed {path}", "fused kernels: the %s kernel failed to build on this machine (%s): its "
                       "rule takes another path, with the same results; `python -m aggregators.fused --build` "
                       "tries again", kernels.describe(source), kernels.failure_path(path))
            return
        if not _background.asked_any:
            _background.asked_any = True
            atexit.register(_start_the_rest)
        _background.queue.insert(0 if source == kernels.generic_source() else len(_background.queue), source)


def _pump() -> None:
    """Reap the build under way if it ended, and start the next one waiting (a few microseconds)."""
    if _background.running is not None:
        process, source, started = _background.running
        if process.poll() is None:
            return
        _background.done.append((kernels.describe(source), time.perf_counter() - started, process.returncode == 0))
        _background.running = None
    while _background.queue:
        source = _background.queue.pop(0)
        try:
            process = kernels.start_build(source)
        except OSError as error:  # an unwritable cache: no kernels for this run
            _warn_once("cache", "fused kernels: cannot build into %s (%s): the coordinate-wise rules take the "
                       "eager path, with the same results", kernels.cache_dir(), error)
            _background.queue.clear()
            return
        if process is not None:
            _background.running = (process, source, time.perf_counter())
            return


def _start_the_rest() -> None:
    """At exit: start the builds still waiting, side by side, so that the next run finds them done."""
    for source in _background.queue:
        try:
            kernels.start_build(source)
        except OSError:
            return
    _background.queue.clear()


def wait(timeout: float = 120.0) -> float:
    """Wait until this process's background builds are done (at most ``timeout`` s); the seconds waited."""
    started = time.perf_counter()
    _pump()
    while (_background.running or _background.queue) and time.perf_counter() - started < timeout:
        time.sleep(0.01)
        _pump()
    return time.perf_counter() - started


def built_here() -> list[tuple[str, float, bool]]:
    """The background builds this process finished: (kernel, seconds from start to end, whether it built)."""
    _pump()
    return list(_background.done)


def summary() -> str:
    """One line for benchmarks and logs: the mode, and the kernels this process built in the background."""
    built = built_here()
    if mode() in ("0", "cached", "1"):
        what = {"0": "the eager path", "cached": "cached kernels only", "1": "kernels built before the call"}[mode()]
        return f"BYZSIM_FUSED={mode()} ({what}); cache {kernels.cache_dir()}"
    if not kernels.have_compiler():
        return f"BYZSIM_FUSED={mode()}; no C++ compiler ({kernels.compiler()!r}): the eager path"
    if not built:
        return (f"BYZSIM_FUSED={mode()}; nothing built by this run (the cache {kernels.cache_dir()} had what it "
                f"asked for)")
    each = ", ".join(f"{kernel} {seconds:.1f} s{'' if ok else ' FAILED'}" for kernel, seconds, ok in built)
    return (f"BYZSIM_FUSED={mode()}; built by this run in the background on first use, once per machine "
            f"(no call waited): {each}")


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


def _kernel(source: str, symbol: str, arguments: list, chosen: str, ask: bool = True) -> ctypes._CFuncPtr | None:
    """Function ``symbol`` of the library built from ``source``: from the cache, built first in mode 1, or None.

    In mode auto a missing library is asked for in the background (when ``ask``) and looked up again on
    the next call (a stat) until it is there. Looked up by the cache's environment and the source (one dictionary
    look-up per call once loaded).
    """
    environ = os.environ
    key = (environ.get("BYZSIM_CACHE_DIR"), environ.get("XDG_CACHE_HOME"), environ.get("HOME"), source)
    if key in _loaded:
        return _loaded[key]
    path = _paths.get(key) or _paths.setdefault(key, kernels.library_path(source))
    if chosen != "1" and not os.path.exists(path):
        if chosen in ("auto", "generic") and ask:
            _ask(source, path)
        return None
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
        if not kernels.have_compiler():
            _no_compiler()
        logger.debug("fused selection unavailable, using the eager path: %s", error)
        function = None
    _loaded[key] = function
    return function


def _specialised(dtype: str, n: int, stat: int, trim: int, k: int, chosen: str,
                 ask: bool = True) -> ctypes._CFuncPtr | None:
    if n > MAX_SPECIALISED_ROWS or chosen in ("0", "generic"):
        return None
    return _kernel(_specialised_source(dtype, n, stat, trim, k), "byzsim_specialised", _SPECIALISED_ARGS, chosen,
                   ask)


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
    try:
        if n is not None and _specialised(_DTYPES[dtype][1], n, *_key(stat, trim, k), chosen) is not None:
            return "specialised"
        return "generic" if _generic(chosen) is not None else None
    finally:
        if _background.running or _background.queue:
            _pump()


def cached(dtype: torch.dtype = torch.float32, n: int | None = None, stat: int = MEDIAN, trim: int = 0,
           k: int = 1) -> str | None:
    """The best kernel for the problem already in the cache: ``"specialised"``, ``"generic"`` or None.

    Unlike `available`, it loads and builds nothing: what the next run on this machine starts with.
    """
    stat, trim, k = _key(stat, trim, k)
    if n is not None and n <= MAX_SPECIALISED_ROWS and kernels.library_path(
            _specialised_source(_DTYPES[dtype][1], n, stat, trim, k)).exists():
        return "specialised"
    return "generic" if kernels.library_path(kernels.generic_source()).exists() else None


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
    if _background.running or _background.queue:  # mode auto: builds asked for by earlier calls
        _pump()
    stat, trim, k = _key(stat, trim, k)
    code, dtype = _DTYPES[x.dtype]
    if x.stride(1) != 1 or x.stride(0) < x.shape[1]:
        x = x.contiguous()
    out = torch.empty(x.shape[1], dtype=x.dtype)
    threads = torch.get_num_threads()
    specialised = _specialised(dtype, n, stat, trim, k, chosen, ask=x.shape[1] >= WORTH_A_BUILD)
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
          f"{'built' if cached() else 'not built'}"
          + (f"; median at n={args.n}: {cached(dtype, args.n) or 'eager'}" if args.n else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
