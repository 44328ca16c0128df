"""Per-run overhead of a grid: wall time minus training time, for grids of small digits runs.

Grids of 20 and 40 runs of 20 steps on the embedded digits dataset (2 or 4
rules x 2 attacks x 5 seeds) are run with `byzsim grid` in a fresh process,
with --jobs 1 and --jobs 2; the training time is the sum of the runs' step
times (metrics.csv), and the overhead is (wall x jobs) - training: everything
that is not a training step. Its growth from 20 to 40 runs, per run, is the
per-run overhead (building each run, evaluating, writing its files); what is
left at 0 runs is the fixed start-up (the interpreter, the torch imports,
starting the worker processes). For comparison, runs started one process per
run (`byzsim train`), the way a shell loop does, are timed on a few of them.

    python benchmarks/grid.py
"""
from __future__ import annotations

import csv
import glob
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = """dataset = "digits"
aggregator = {rules}
attack = ["none", "alie"]
nb_workers = 9
nb_decl_byz = 1
steps = 20
eval_every = 10
seeds = 5
"""
SIZES = {20: '["median", "krum"]', 40: '["median", "krum", "average", "trmean"]'}


def _training_seconds(folder: Path) -> float:
    return sum(float(row["step_time"]) for path in glob.glob(str(folder / "*" / "metrics.csv"))
               for row in csv.DictReader(open(path)))


def grid_overhead(tmp: Path, runs: int, jobs: int) -> tuple[float, float]:
    """(wall seconds, training seconds) of a grid of ``runs`` runs by `byzsim grid --jobs jobs`."""
    spec, output = tmp / f"grid{runs}.toml", tmp / f"out{runs}-{jobs}"
    spec.write_text(GRID.format(rules=SIZES[runs]))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "simulator", "grid", str(spec), "--output", str(output),
                    "--jobs", str(jobs), "--quiet"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start, _training_seconds(output)


def per_process(tmp: Path, count: int) -> tuple[float, float]:
    """(wall seconds, training seconds) of `count` runs, one `byzsim train` process each."""
    output = tmp / "loop"
    start = time.perf_counter()
    for seed in range(1, count + 1):
        subprocess.run([sys.executable, "-m", "simulator", "train", "--dataset", "digits", "--aggregator", "median",
                        "--nb-workers", "9", "--nb-decl-byz", "1", "--steps", "20", "--eval-every", "10",
                        "--seed", str(seed), "--output", str(output), "--quiet"],
                       cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start, _training_seconds(output)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("grids of digits runs of 20 steps; overhead = wall x jobs - training")
        for jobs in (1, 2):
            overhead = {}
            for runs in SIZES:
                wall, training = grid_overhead(tmp, runs, jobs)
                overhead[runs] = wall * jobs - training
                print(f"  byzsim grid --jobs {jobs}, {runs} runs: wall {wall:6.1f} s, training {training:5.1f} s, "
                      f"overhead {overhead[runs]:5.1f} s")
            small, large = sorted(SIZES)
            per_run = (overhead[large] - overhead[small]) / (large - small)
            print(f"    -> per-run overhead {per_run:.3f} s, fixed start-up {overhead[small] - small * per_run:.1f} s")
        count = 6
        wall, training = per_process(tmp, count)
        print(f"  one byzsim train process per run ({count} runs): wall {wall:6.1f} s, training {training:5.1f} s, "
              f"overhead {(wall - training) / count:.3f} s per run")


if __name__ == "__main__":
    main()
