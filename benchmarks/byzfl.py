"""byzsim's rules against ByzFL 0.0.11's, side by side in one run.

For median, trmean, meamed, krum, multikrum, nnm and geomed it times
byzsim and ByzFL on the same random float32 [n, d] gradients (default n = 50,
d = 1e6, f = (n - 3) // 4 = 11), interleaved call by call, and prints the
median milliseconds per call, byzsim's speed-up and the geometric mean of the
speed-ups. The coordinate-wise rules are timed twice for byzsim: on the fused
kernel (`aggregators.fused`) and on the eager path (``BYZSIM_FUSED=0``). As
on a default install, nothing is built by hand: the warm-up call of each rule
asks for its kernels as a run does (built in the background on first use,
once per machine); the script waits for those builds, says which it made and
how long each took (none on a machine that ran it before), and times after.

ByzFL is not a dependency of byzsim: point this script at an unpacked copy,

    pip download byzfl==0.0.11 --no-deps -d /tmp/byzfl && unzip -q /tmp/byzfl/*.whl -d /tmp/byzfl
    python benchmarks/byzfl.py --byzfl-path /tmp/byzfl      # or BYZFL_PATH=/tmp/byzfl

(``pip install --no-deps --target DIR byzfl==0.0.11`` works too). Conventions
are matched where they differ; the table's notes say how.
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import platform
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path: this file would hide the byzfl package
# and benchmarks/aggregators.py the aggregators package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import aggregators  # noqa: E402
from aggregators import fused  # noqa: E402

COORDINATEWISE = ("median", "trmean", "meamed")

# rule -> (byzsim spec, ByzFL class name, whether ByzFL's class takes f, note on conventions)
RULES = {
    "median": ("median", "Median", False, "same definition (ByzFL: torch.quantile(q=0.5))"),
    "trmean": ("trmean", "TrMean", True, "same definition"),
    "meamed": ("meamed", "Meamed", True, "same up to ties (ByzFL: topk of |x - median|)"),
    "krum": ("krum(neighbours=n-f-1)", "Krum", True, "ByzFL scores with n-f-1 neighbours"),
    "multikrum": ("multikrum(neighbours=n-f-1)", "MultiKrum", True, "n-f-1 neighbours, m = n - f"),
    "nnm": ("nnm", "NNM", True, "pre-aggregation step alone, [n, d] out"),
    "geomed": ("geomed(nu=0.1,max_iter=3,tol=0,start=zero)", "GeometricMedian", False,
               "ByzFL: 3 Weiszfeld steps from 0, nu = 0.1; byzsim the same"),
}
EXTRA = {"geomed (byzsim default)": ("geomed", "GeometricMedian",
                                     "byzsim to tolerance 1e-7 from the mean vs ByzFL's 3 steps")}


def find_byzfl(path: str | None):
    """ByzFL's ``aggregators`` package from ``path`` (or $BYZFL_PATH, or sys.path), with its version.

    Only ``byzfl.aggregators`` is imported: the package's own ``__init__`` also
    loads its training framework (seaborn, matplotlib...), which these rules
    do not need. Exits with instructions when ByzFL is not there.
    """
    path = path or os.environ.get("BYZFL_PATH")
    roots = [Path(path).resolve()] if path else [Path(p or ".").resolve() for p in sys.path]
    root = next((r for r in roots if (r / "byzfl" / "aggregators" / "__init__.py").is_file()), None)
    if root is None:
        print(f"ByzFL not found{f' in {path}' if path else ''}. Get it outside the project and point this script at it:\n"
              "    pip download byzfl==0.0.11 --no-deps -d /tmp/byzfl && unzip -q /tmp/byzfl/*.whl -d /tmp/byzfl\n"
              "    python benchmarks/byzfl.py --byzfl-path /tmp/byzfl     # or BYZFL_PATH=/tmp/byzfl\n"
              "ByzFL is never a dependency of byzsim: do not install it into the project's environment.",
              file=sys.stderr)
        raise SystemExit(2)
    package = types.ModuleType("byzfl")
    package.__path__ = [str(root / "byzfl")]
    sys.modules["byzfl"] = package
    metadata = sorted(root.glob("byzfl-*.dist-info"))
    version = metadata[-1].name.removeprefix("byzfl-").removesuffix(".dist-info") if metadata else "unknown"
    return importlib.import_module("byzfl.aggregators"), version


def byzsim_callable(spec: str, f: int, eager: bool = False):
    """A call of byzsim's rule (or pre-aggregation step); ``eager`` forces BYZSIM_FUSED=0 during it."""
    if aggregators.is_preaggregation(spec.split("(")[0]):
        step = aggregators.get(f"{spec}>average").steps[0]
        call = lambda x: step.transform(x, f)  # noqa: E731
    else:
        rule = aggregators.get(spec)
        call = lambda x: rule(x, f)  # noqa: E731
    if not eager:
        return call

    def forced(x):
        saved = os.environ.get("BYZSIM_FUSED")
        os.environ["BYZSIM_FUSED"] = "0"
        try:
            return call(x)
        finally:
            if saved is None:
                del os.environ["BYZSIM_FUSED"]
            else:
                os.environ["BYZSIM_FUSED"] = saved
    return forced


def seconds(call, x) -> float:
    start = time.perf_counter()
    call(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--byzfl-path", help="folder holding the byzfl package (default: $BYZFL_PATH)")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--d", type=float, default=1e6)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved calls per side (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: stable on a shared machine)")
    parser.add_argument("--only", nargs="*", help="time only these rules")
    args = parser.parse_args()
    byzfl_aggregators, version = find_byzfl(args.byzfl_path)
    torch.set_num_threads(args.threads)
    n, d = args.n, int(args.d)
    f = (n - 3) // 4
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(0))

    subjects = {}  # label -> (byzsim call, ByzFL call)
    for name, (spec, cls, takes_f, _) in list(RULES.items()) + [(k, (s, c, False, note)) for k, (s, c, note) in EXTRA.items()]:
        if args.only and name.split()[0] not in args.only:
            continue
        theirs = getattr(byzfl_aggregators, cls)(f=f) if takes_f else getattr(byzfl_aggregators, cls)()
        subjects[name] = (byzsim_callable(spec, f), theirs)
        if name in COORDINATEWISE:
            subjects[name + " (eager)"] = (byzsim_callable(spec, f, eager=True), theirs)

    times = {label: ([], []) for label in subjects}
    gaps = {}  # warm-up (and the fused kernel's load); how far apart the two outputs are
    for label, (call, theirs) in subjects.items():
        gaps[label] = float((call(x) - theirs(x)).abs().max() / x.abs().max())
    fused.wait()  # the kernels the warm-up asked for, as a first run on this machine builds them
    build = fused.summary()
    for call, _ in subjects.values():  # the kernels built meanwhile are loaded here, not in a timed call
        call(x)
    problems = {"median": (fused.MEDIAN,), "trmean": (fused.TRIMMED_MEAN, f),
                "meamed": (fused.CLOSEST_TO_MEDIAN, 0, n - f)}
    kernel = {name: fused.available(torch.float32, n, *problem) or "eager" for name, problem in problems.items()
              if name in subjects}
    for _ in range(args.repeats):
        for label, (call, theirs) in subjects.items():
            times[label][0].append(seconds(call, x))
            times[label][1].append(seconds(theirs, x))

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
          f"threads, torch {torch.__version__}, ByzFL {version}; float32 [{n}, {d:.0e}], f = {f}; median of "
          f"{args.repeats} interleaved calls; fused kernels in use: "
          + (", ".join(f"{name} {kind}" for name, kind in kernel.items()) or "none timed"))
    print(f"# {build}")
    report(times, gaps)


def report(times: dict, gaps: dict) -> None:
    """The table of times and speed-ups, and their geometric means (fused, and eager for the coordinate-wise rules)."""
    print("| rule | byzsim ms | ByzFL ms | speed-up | max abs difference / max abs input | conventions |")
    print("|---|---|---|---|---|---|")
    speedups, eager_speedups = {}, {}
    notes = {**{k: v[3] for k, v in RULES.items()}, **{k: v[2] for k, v in EXTRA.items()}}
    for label, (ours, theirs) in times.items():
        mine, other = statistics.median(ours), statistics.median(theirs)
        base = label.replace(" (eager)", "")
        if label.endswith("(eager)"):
            eager_speedups[base] = other / mine
        elif label in RULES:
            speedups[label] = other / mine
        print(f"| {label} | {mine * 1e3:.1f} | {other * 1e3:.1f} | {other / mine:.1f}x | {gaps[label]:.0e} | "
              f"{notes.get(base, '')} |")
    if speedups:
        geo = math.exp(statistics.fmean(math.log(v) for v in speedups.values()))
        print(f"\nGeometric mean of byzsim's speed-up over {', '.join(speedups)}: {geo:.1f}x")
        if eager_speedups:
            eager = {**speedups, **eager_speedups}
            geo = math.exp(statistics.fmean(math.log(v) for v in eager.values()))
            print(f"Same, with the coordinate-wise rules on the eager path: {geo:.1f}x")

if __name__ == "__main__":
    main()
