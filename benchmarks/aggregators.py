"""Time per call of every aggregation rule and pre-aggregation step.

Prints one table: rows are rules, columns are (n, d) sizes, cells are
milliseconds per call on random float32 gradients with f = (n - 3) // 4
(the largest f Bulyan accepts). For krum, multikrum, median, trmean, geomed,
cclip and nnm it also times a plain Python-loop reference (loops over pairs,
workers or coordinates) in the same run and prints reference / byzsim. A
reference predicted to take more than REFERENCE_BUDGET seconds per call is
skipped and printed as "skipped".

    python benchmarks/aggregators.py            # full table (a few minutes)
    python benchmarks/aggregators.py --quick    # small sizes, one repeat
    python benchmarks/aggregators.py --eager    # coordinate-wise rules without the fused kernels

The coordinate-wise rules (median, trmean, meamed, phocas, bulyan's second
phase) use the fused kernels of `aggregators.fused`, as a run does: before
timing, one call of each at every size asks for its kernels (built in the
background on first use, once per machine) and the script waits for them;
the header says which kernels this run built, how long each took, and which
kernel the median runs on at each n.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import aggregators  # noqa: E402
from aggregators import fused  # noqa: E402
from experiments.tools import UserException  # noqa: E402

REFERENCE_BUDGET = 3.0  # seconds per reference call
STEPS = {"nnm", "bucketing", "clip", "arc"}
COORDINATEWISE = ("median", "trmean", "meamed", "phocas", "bulyan")  # the rules with fused kernels


# Plain Python-loop references: what a direct transcription of each definition looks like.
def ref_pairwise(x):
    n = x.shape[0]
    dist = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            dist[i][j] = dist[j][i] = float((x[i] - x[j]).square().sum())
    return dist


def ref_krum_scores(x, f):
    n, dist = x.shape[0], ref_pairwise(x)
    return [sum(sorted(dist[i][j] for j in range(n) if j != i)[:n - f - 2]) for i in range(n)]


def ref_krum(x, f):
    scores = ref_krum_scores(x, f)
    return x[min(range(len(scores)), key=scores.__getitem__)].clone()


def ref_multikrum(x, f):
    scores = ref_krum_scores(x, f)
    best = sorted(range(len(scores)), key=scores.__getitem__)[:x.shape[0] - f]
    return sum(x[i] for i in best) / len(best)


def ref_median(x, f):
    return torch.tensor([statistics.median(column) for column in x.T.tolist()])


def ref_trmean(x, f):
    n = x.shape[0]
    return torch.tensor([sum(sorted(column)[f:n - f]) / (n - 2 * f) for column in x.T.tolist()])


def ref_geomed(x, f, iters=100, nu=1e-6, tol=1e-7):
    z = sum(x) / x.shape[0]
    for _ in range(iters):
        weights = [1.0 / max(nu, float((row - z).norm())) for row in x]
        new = sum(w * row for w, row in zip(weights, x)) / sum(weights)
        moved = float((new - z).norm())
        z = new
        if moved <= tol * sum(float((row - z).norm()) for row in x) / x.shape[0]:
            break
    return z


def ref_cclip(x, f, tau=10.0):
    centre = torch.zeros_like(x[0])
    return centre + sum((row - centre) * min(1.0, tau / float((row - centre).norm())) for row in x) / x.shape[0]


def ref_nnm(x, f):
    n, dist = x.shape[0], ref_pairwise(x)
    out = []
    for i in range(n):
        nearest = sorted(range(n), key=lambda j: dist[i][j])[:n - f]
        out.append(sum(x[j] for j in nearest) / len(nearest))
    return torch.stack(out)


REFERENCES = {"krum": ref_krum, "multikrum": ref_multikrum, "median": ref_median, "trmean": ref_trmean,
              "geomed": ref_geomed, "cclip": ref_cclip, "nnm": ref_nnm}
# How each reference's cost grows, to predict it from the smallest size.
REFERENCE_COST = {"krum": lambda n, d: n * n * d, "multikrum": lambda n, d: n * n * d,
                  "nnm": lambda n, d: n * n * d, "median": lambda n, d: n * d, "trmean": lambda n, d: n * d,
                  "geomed": lambda n, d: 100 * n * d, "cclip": lambda n, d: n * d}


def timed(fn, repeats):
    """Median seconds per call; one warm-up call; a single repeat when a call exceeds 1 s."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if first > 1.0:
        return first
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def subject(name):
    """The callable timed for ``name``: the rule, or the pre-aggregation step's transform."""
    if name in STEPS:
        step = aggregators.get(f"{name}>average").steps[0]
        return lambda x, f: step.transform(x, f)
    rule = aggregators.get(name)
    return lambda x, f: rule(x, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and one repeat (a smoke test)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: stable timings on a shared machine)")
    parser.add_argument("--only", nargs="*", help="time only these rules")
    parser.add_argument("--sizes", nargs="*", help="n:d pairs, e.g. 25:1000000")
    parser.add_argument("--eager", action="store_true", help="coordinate-wise rules on the eager path (BYZSIM_FUSED=0)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.eager:
        os.environ["BYZSIM_FUSED"] = "0"
    sizes = [(10, 10_000), (25, 10_000)] if args.quick else [(n, d) for d in (100_000, 1_000_000)
                                                             for n in (10, 25, 50, 100)]
    if args.sizes:
        sizes = [(int(n), int(float(d))) for n, d in (pair.split(":") for pair in args.sizes)]
    repeats = 1 if args.quick else 3
    torch.manual_seed(0)
    for n, _ in sizes:  # the kernels a run at these sizes would ask for, built before anything is timed
        for name in COORDINATEWISE:
            if not args.only or name in args.only:
                subject(name)(torch.randn(n, fused.WORTH_A_BUILD), (n - 3) // 4)
    fused.wait()
    kernels = {n: fused.available(torch.float32, n) or "eager" for n, _ in sizes}
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; ms per call, float32, f = (n - 3) // 4; coordinate-wise median on: "
          + ", ".join(f"n={n} {kind}" for n, kind in kernels.items()))
    print(f"# fused kernels: {fused.summary()}")
    header = ["rule"] + [f"n={n} d={d:.0e}".replace("e+0", "e") for n, d in sizes]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    measured = {}
    for name in args.only or aggregators.names():
        cells = []
        for n, d in sizes:
            f = (n - 3) // 4
            x = torch.randn(n, d)
            try:
                seconds = timed(lambda: subject(name)(x, f), repeats)
                measured[name, n, d] = seconds
                cells.append(f"{seconds * 1e3:.1f}")
            except UserException:
                cells.append("n/a")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print()
    print("Python-loop reference: ms per call (reference / byzsim)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, reference in REFERENCES.items():
        if args.only and name not in args.only:
            continue
        cells, unit = [], None
        for n, d in sizes:
            f = (n - 3) // 4
            cost = REFERENCE_COST[name](n, d)
            if unit is not None and unit * cost > REFERENCE_BUDGET:
                cells.append("skipped")
                continue
            x = torch.randn(n, d)
            seconds = timed(lambda: reference(x, f), 1)
            unit = seconds / cost if unit is None else max(unit, seconds / cost)
            cells.append(f"{seconds * 1e3:.0f} ({seconds / measured[name, n, d]:.0f}x)")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
