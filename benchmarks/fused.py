"""The fused coordinate-wise kernels: per-call speed, compile cost and break-even, side by side.

Per call (interleaved calls, medians, one run), for median, trmean, meamed
and phocas at f = (n - 3) // 4: the specialised kernel of that problem (what
`aggregators.fused` uses once it is built), the generic kernel
(``BYZSIM_FUSED=generic``), the eager sorting network (``BYZSIM_FUSED=0``),
``torch.median(dim=0)``, and one pass over the [n, d] input (``x.sum(0)``,
the floor a fused pass can reach; ``x.clone()`` for a pass that also writes).

Compile cost, each in a fresh process with an empty cache: the first call of
the median with ``BYZSIM_FUSED=1`` (build + load + call) for the specialised
and for the generic kernel. With ``--compare-builds`` also the two other ways
considered: the same source through ``torch.utils.cpp_extension.load_inline``
(torch headers, pybind11), and ``torch.compile`` (inductor's C++ backend) of
the eager median network, cold and then warm (its on-disk cache filled).
Break-even: how many calls (one per simulator step) the per-call saving over
the eager path takes to repay the first-call cost.

    python benchmarks/fused.py                      # sizes 25:79510 and 50:1e6
    python benchmarks/fused.py --compare-builds     # + load_inline and torch.compile (a few minutes)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path and benchmarks/aggregators.py would hide the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from aggregators import coordinatewise, fused, kernels  # noqa: E402

STATISTICS = {
    "median": lambda x, f: coordinatewise.median(x, f),
    "trmean": lambda x, f: coordinatewise.trimmed_mean(x, f),
    "meamed": lambda x, f: coordinatewise.mean_around_median(x, f),
    "phocas": lambda x, f: coordinatewise.mean_around_trimmed_mean(x, f),
}

# Each snippet runs in a fresh process and prints one JSON line: seconds of compile (first call) and per call.
BUILD_CTYPES = """
import json, os, sys, time, statistics, torch
sys.path.insert(0, {root!r}); os.environ["BYZSIM_CACHE_DIR"] = {cache!r}; os.environ["BYZSIM_FUSED"] = "1"
torch.set_num_threads({threads})
from aggregators import coordinatewise, fused
if {generic}:
    fused.MAX_SPECIALISED_ROWS = 0  # mode 1 then builds the generic kernel instead of the specialised one
x = torch.randn({n}, {d})
start = time.perf_counter(); coordinatewise.median(x); first = time.perf_counter() - start
calls = []
for _ in range(5):
    start = time.perf_counter(); coordinatewise.median(x); calls.append(time.perf_counter() - start)
print(json.dumps({{"first": first, "call": statistics.median(calls)}}))
"""

BUILD_INLINE = """
import json, sys, time, torch
from torch.utils.cpp_extension import load_inline
source = open({source!r}).read() + '''
#include <torch/extension.h>
torch::Tensor median(torch::Tensor x, torch::Tensor pairs) {{
  auto out = torch::empty({{x.size(1)}}, x.options());
  byzsim_select(0, x.data_ptr(), x.size(0), x.size(1), x.stride(0), out.data_ptr(), pairs.data_ptr<int>(),
                pairs.size(0), 0, 0, 1, 1);
  return out;
}}
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {{ m.def("median", &median); }}
'''
start = time.perf_counter()
load_inline("byzsim_select_inline", cpp_sources=[source], build_directory={cache!r},
            extra_cflags=["-O3", "-march=native", "-ffp-contract=off", "-fopenmp"], extra_ldflags=["-fopenmp"])
print(json.dumps({{"first": time.perf_counter() - start, "call": None}}))
"""

BUILD_COMPILE = """
import json, os, sys, time, statistics, torch
sys.path.insert(0, {root!r}); os.environ["TORCHINDUCTOR_CACHE_DIR"] = {cache!r}
torch.set_num_threads({threads})
from aggregators.sorting import pruned_network
n, d = {n}, {d}
pairs = pruned_network(n, tuple(range((n - 1) // 2, n // 2 + 1)))
def median(x):
    rows = list(x.unbind(0))
    for i, j, need_min, need_max in pairs:
        low = torch.minimum(rows[i], rows[j]) if need_min else None
        if need_max:
            rows[j] = torch.maximum(rows[i], rows[j])
        rows[i] = low
    return rows[(n - 1) // 2] if n % 2 else (rows[n // 2 - 1] + rows[n // 2]) / 2
compiled = torch.compile(median, dynamic=False)
x = torch.randn(n, d)
start = time.perf_counter(); compiled(x); first = time.perf_counter() - start
calls = []
for _ in range(5):
    start = time.perf_counter(); compiled(x); calls.append(time.perf_counter() - start)
print(json.dumps({{"first": first, "call": statistics.median(calls)}}))
"""


def in_fresh_process(snippet: str, **fields) -> dict:
    """Run ``snippet`` in a new interpreter; its last output line is JSON."""
    done = subprocess.run([sys.executable, "-c", snippet.format(**fields)], capture_output=True, text=True,
                          timeout=900, cwd=ROOT)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def with_mode(value: str, call):
    saved = os.environ.get("BYZSIM_FUSED")
    os.environ["BYZSIM_FUSED"] = value
    try:
        return call()
    finally:
        os.environ.pop("BYZSIM_FUSED") if saved is None else os.environ.__setitem__("BYZSIM_FUSED", saved)


def interleaved(subjects: dict, repeats: int) -> dict:
    """Median seconds per call of each subject, the subjects' calls interleaved (one warm-up each)."""
    samples = {name: [] for name in subjects}
    for call in subjects.values():
        call()
    for _ in range(repeats):
        for name, call in subjects.items():
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def per_call_table(sizes, repeats: int) -> dict:
    """Prints ms per call and ratios; returns {(n, d): {"fused": s, "generic": s, "eager": s}} for the median."""
    print("| n, d | statistic | specialised ms | generic ms | eager ms | torch.median ms | one pass (sum) ms | "
          "clone ms | eager / specialised | generic / specialised | specialised / one pass |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    medians = {}
    for n, d in sizes:
        f = (n - 3) // 4
        x = torch.randn(n, d, generator=torch.Generator().manual_seed(0))
        for name, statistic in STATISTICS.items():
            subjects = {"fused": lambda: statistic(x, f),
                        "generic": lambda: with_mode("generic", lambda: statistic(x, f)),
                        "eager": lambda: with_mode("0", lambda: statistic(x, f)),
                        "sum": lambda: x.sum(dim=0), "clone": lambda: x.clone()}
            t = interleaved(subjects, repeats)
            if name == "median":  # timed apart: its big temporaries evict x from the caches, slowing the next call
                t.update(interleaved({"torch.median": lambda: x.median(dim=0)}, max(1, repeats // 3)))
            ms = {key: f"{value * 1e3:.2f}" for key, value in t.items()}
            print(f"| {n}, {d:.0e} | {name} | {ms['fused']} | {ms['generic']} | {ms['eager']} | "
                  f"{ms.get('torch.median', '')} | {ms['sum']} | {ms['clone']} | {t['eager'] / t['fused']:.1f}x | "
                  f"{t['generic'] / t['fused']:.1f}x | {t['fused'] / t['sum']:.1f}x |", flush=True)
            if name == "median":
                medians[n, d] = t
    return medians


def compile_table(sizes, medians: dict, threads: int, compare: bool) -> None:
    """First-call (compile) cost of each way, each in a fresh process, and its break-even run length."""
    with tempfile.TemporaryDirectory(prefix="byzsim-bench-") as scratch:
        _compile_rows(sizes, medians, threads, compare, scratch)


def _compile_rows(sizes, medians: dict, threads: int, compare: bool, scratch: str) -> None:
    print("\n| way | n, d | first call s | per call ms | break-even calls = steps (vs eager) |")
    print("|---|---|---|---|---|")
    for n, d in sizes:
        t = medians[n, d]
        ways = [("specialised kernel (g++, chosen)", BUILD_CTYPES, False, t["fused"]),
                ("generic kernel (g++)", BUILD_CTYPES, True, t["generic"])]
        if compare:
            ways += [("torch.compile, cold cache", BUILD_COMPILE, False, None),
                     ("torch.compile, warm cache", BUILD_COMPILE, True, None)]
        cache = None
        for label, snippet, flag, call in ways:
            if snippet is BUILD_CTYPES or not flag:  # the warm torch.compile reuses the cold one's cache
                cache = tempfile.mkdtemp(dir=scratch)
            result = in_fresh_process(snippet, root=str(ROOT), cache=cache, threads=threads, n=n, d=d, generic=flag)
            if "error" in result:
                print(f"| {label} | {n}, {d:.0e} | failed: {result['error']} | | |")
                continue
            # The kernels' per-call times are the interleaved in-process ones; torch.compile's its own process's.
            call = result["call"] if call is None else call
            cost, gain = result["first"] - call, t["eager"] - call
            even = f"{cost / gain:.0f}" if gain > 0 else "never"
            print(f"| {label} | {n}, {d:.0e} | {result['first']:.2f} | {call * 1e3:.2f} | {even} |", flush=True)
    if compare:
        result = in_fresh_process(BUILD_INLINE, source=str(kernels.SOURCE), cache=tempfile.mkdtemp(dir=scratch))
        first = f"{result['first']:.1f}" if "first" in result else f"failed: {result['error']}"
        print(f"| cpp_extension.load_inline (generic kernel + pybind11, torch headers) | any | {first} | "
              "as the generic kernel | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=["25:79510", "50:1e6"], help="n:d pairs")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: stable on a shared machine)")
    parser.add_argument("--compare-builds", action="store_true", help="also time load_inline and torch.compile")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [(int(n), int(float(d))) for n, d in (pair.split(":") for pair in args.sizes)]
    for n, d in sizes:  # the kernels this benchmark times (cached: a no-op once built)
        fused.build(n, (n - 3) // 4)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
          f"threads, torch {torch.__version__}; float32, f = (n - 3) // 4; medians of {args.repeats} interleaved calls")
    medians = per_call_table(sizes, args.repeats)
    compile_table(sizes, medians, args.threads, args.compare_builds)


if __name__ == "__main__":
    main()
