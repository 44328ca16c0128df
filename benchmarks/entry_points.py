"""Step time of one run started from Python (`simulator.core.run`) and from the `byzsim` command, side by side.

Both start in a fresh process, on the same configuration, alternately
(command, Python, command, ...), and the median per-step time of each run is
read back from its metrics.csv. The two should agree: `simulator.core.run()`
applies the same process-wide allocator setting as the command
(`simulator.core.memory.keep_freed_memory`).

    python benchmarks/entry_points.py            # 3 rounds
    python benchmarks/entry_points.py --rounds 1
"""
from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = dict(dataset="fashionmnist", model="simples-full", nb_workers=25, nb_decl_byz=5, batch_size=32,
                aggregator="median", attack="alie(z=1.5)", momentum=0.9, momentum_at="worker", steps=150,
                eval_every=1000, checkpoint_every=1000)


def _median_step_ms(output: Path) -> float:
    (metrics,) = output.rglob("metrics.csv")
    with open(metrics) as handle:
        times = [float(row["step_time"]) for row in csv.DictReader(handle)][10:]  # after a warm-up
    return 1000 * statistics.median(times)


def from_command(output: Path) -> float:
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in SETTINGS.items()]
    subprocess.run([sys.executable, "-m", "simulator", "train", *flags, f"--output={output}", "--quiet"],
                   cwd=ROOT, check=True, capture_output=True)
    return _median_step_ms(output)


def from_python(output: Path) -> float:
    code = ("from simulator import Config, run\n"
            f"run(Config(**{SETTINGS!r}, output={str(output)!r}), progress=False)\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    return _median_step_ms(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each entry point (default: 3)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"byzsim train": [], "simulator.core.run()": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            times["byzsim train"].append(from_command(Path(tmp) / f"cli{i}"))
            times["simulator.core.run()"].append(from_python(Path(tmp) / f"py{i}"))
    cli, py = (statistics.median(v) for v in times.values())
    print(f"median step time over {args.rounds} runs each ({SETTINGS['model']}, n = {SETTINGS['nb_workers']}, "
          f"{SETTINGS['aggregator']} under {SETTINGS['attack']}):")
    print(f"  byzsim train     {cli:7.2f} ms   runs: {', '.join(f'{t:.2f}' for t in times['byzsim train'])}")
    print(f"  simulator.core.run()  {py:7.2f} ms   runs: {', '.join(f'{t:.2f}' for t in times['simulator.core.run()'])}")
    print(f"  ratio run()/train: {py / cli:.2f}")


if __name__ == "__main__":
    main()
