"""Step cost of the backdoor defence rules beside the plain average, side by side in one run (not a test).

    python benchmarks/defences.py                  # n = 50, d = 100,000, f = 11, 7 interleaved repeats
    python benchmarks/defences.py --quick          # a smoke test: n = 10, d = 1,000, one repeat
    python benchmarks/defences.py --n 25 --d 1e6 --f 5 --repeats 9 --threads 2

Times one call of each registered defence (fltrust, flame, foolsgold,
normclip, crfl, caf, smea) and of ``average`` on the same [n, d] float32
vectors: n - f honest rows around a common direction and f rows around
another (a backdoor-like cluster), so that the clustering and filtering
rules have something to find. Each rule is told the round it needs
(`RoundInfo`, only the fields in its `needed()`: the senders 0..n-1, the
server's own update, the global parameters, the server's lr and the step)
before every call, as a run does; FLTrust's cost is the rule's alone, not the
server's gradient pass on its root set that a run adds. The repeats are
interleaved (one call of every rule per round, after one warm-up call each)
and the table gives each rule's median and its ratio to the average's.
SMEA's exact search enumerates the C(n, f) subsets of rows to leave out:
where that exceeds its cap it runs at the largest f the cap allows, and its
average is timed again at that f (the output says so).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path and benchmarks/aggregators.py would hide the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import aggregators  # noqa: E402
from aggregators.base import RoundInfo, Rule  # noqa: E402

DEFENCES = ("fltrust", "flame", "foolsgold", "normclip", "crfl", "caf", "smea")


def vectors(n: int, f: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """[n, d]: n - f rows N(mu, 1) around a common mean mu, then f rows around another mean nu."""
    mu, nu = torch.randn(2, d, generator=generator)
    noise = torch.randn(n, d, generator=generator)
    return torch.cat([mu + noise[:n - f], nu + noise[n - f:]])


def round_info(rule: Rule, x: torch.Tensor, generator: torch.Generator) -> RoundInfo:
    """The fields of this round that ``rule`` reads: senders 0..n-1, a reference near the honest mean, parameters."""
    n, d = x.shape
    needs = rule.needed()
    return RoundInfo(clients=torch.arange(n) if "clients" in needs else None,
                     reference=x[0] + torch.randn(d, generator=generator) if "reference" in needs else None,
                     params=torch.randn(d, generator=generator) if "params" in needs else None,
                     lr=0.1 if "lr" in needs else None, step=10)


def smea_f(n: int, f: int) -> int:
    """The largest f' <= f whose C(n, f') subsets SMEA's default cap accepts."""
    cap = aggregators.get("smea").max_subsets
    return max(g for g in range(f + 1) if math.comb(n, g) <= cap)


def machine() -> str:
    """One line: processor, cores, torch and its threads."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            name = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 10, d = 1,000, one repeat (a smoke test)")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--d", type=float, default=1e5)
    parser.add_argument("--f", type=int, default=None, help="Byzantine rows (default (n - 3) // 4)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: stable timings on a shared machine)")
    args = parser.parse_args()
    n, d, repeats = (10, 1000, 1) if args.quick else (args.n, int(args.d), args.repeats)
    f = args.f if args.f is not None else (n - 3) // 4
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    cases = {"average": (aggregators.get("average"), f)}  # name -> (rule, the f it is told)
    for name in (name for name in DEFENCES if name in aggregators.names()):
        cases[name] = (aggregators.get(name), smea_f(n, f) if name == "smea" else f)
    baseline, notes = {name: "average" for name in cases}, {}
    if "smea" in cases and cases["smea"][1] != f:  # SMEA at a smaller f, beside an average timed at that f
        g = cases["smea"][1]
        baseline["smea"] = f"average at f = {g}"
        cases[baseline["smea"]] = (aggregators.get("average"), g)
        notes["smea"] = (f"at f = {g}: C({n}, {f}) = {math.comb(n, f):.1e} subsets exceed its cap of "
                         f"{cases['smea'][0].max_subsets:,}; ratio to the average at f = {g}")
    inputs = {g: vectors(n, g, d, generator) for g in sorted({g for _, g in cases.values()})}
    infos = {name: round_info(rule, inputs[g], generator) for name, (rule, g) in cases.items()}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(repeats + 1):  # the first round warms every rule up (imports, kernels) and is dropped
        for name, (rule, g) in cases.items():
            rule.inform(infos[name])
            start = time.perf_counter()
            rule(inputs[g], g)
            if round_:
                samples[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(times) for name, times in samples.items()}
    print(f"# {machine()}")
    print(f"# n = {n}, d = {d:,}, f = {f}, float32; median of {repeats} interleaved calls after a warm-up; "
          "ratio to the average's median")
    print("| rule | ms per call | x average | note |")
    print("|---|---|---|---|")
    for name in baseline:
        ratio = medians[name] / medians[baseline[name]]
        print(f"| {name} | {medians[name] * 1e3:.2f} | {ratio:.1f} | {notes.get(name, '')} |", flush=True)


if __name__ == "__main__":
    main()
