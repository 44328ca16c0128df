"""The demo grid (`examples/demo.toml`, what `make demo` runs) on the vmap and the grouped engine, side by side.

Each round runs the whole grid once per engine, alternating (vmap, grouped, vmap, ...), each time with
`byzsim grid --jobs 2` in a fresh process and a fresh output folder, so a busy machine slows both alike;
the table gives the median wall time of each and their ratio. The engine is the only change to the file.
It also prints what the runs used, as `make demo` gets it with no flag and no build command: the engine
each run's summary.json names, and the fused kernel the median ran on (`aggregators.fused`, built in the
background on a machine's first run; the line says what the cache held before the first round and after).

    python benchmarks/demo.py             # 3 rounds
    python benchmarks/demo.py --rounds 1 --jobs 1
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo.toml"
ENGINES = ("vmap", "grouped")


def grid_file(folder: Path, engine: str) -> Path:
    """The demo grid with its engine set to ``engine``."""
    text, count = re.subn(r'^engine = "\w+"', f'engine = "{engine}"', DEMO.read_text(), flags=re.MULTILINE)
    if count != 1:
        raise SystemExit(f"{DEMO} has no single engine line to replace")
    path = folder / f"demo-{engine}.toml"
    path.write_text(text)
    return path


def timed_grid(path: Path, output: Path, jobs: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "simulator", "grid", str(path), "--output", str(output), "--jobs",
                    str(jobs), "--quiet"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_kernel() -> str:
    """The fused kernel the demo's median runs on with what the cache holds now (n = 17 workers, float32)."""
    sys.path.insert(0, str(ROOT))
    import torch
    from aggregators import fused
    return fused.cached(torch.float32, 17) or "eager"


def engines_used(output: Path) -> str:
    """The engines the runs' summary.json files name, with their counts."""
    names = [json.loads(p.read_text()).get("engine", "?") for p in sorted(output.glob("*/summary.json"))]
    return ", ".join(f"{name} ({names.count(name)} runs)" for name in sorted(set(names)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {engine: [] for engine in ENGINES}
    before = median_kernel()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {engine: grid_file(folder, engine) for engine in ENGINES}
        for r in range(args.rounds):
            for engine in ENGINES:
                times[engine].append(timed_grid(files[engine], folder / f"{engine}-{r}", args.jobs))
        used = {engine: engines_used(folder / f"{engine}-0") for engine in ENGINES}
    vmap, grouped = (statistics.median(times[engine]) for engine in ENGINES)
    print(f"demo grid ({DEMO.relative_to(ROOT)}), --jobs {args.jobs}, median of {args.rounds} alternating rounds")
    print(f"engines the runs used: {'; '.join(f'{engine} file: {text}' for engine, text in used.items())}")
    print(f"median's fused kernel (n = 17): {before} before the first round, {median_kernel()} after")
    print(f"{'vmap s':>8}{'grouped s':>11}{'vmap/grouped':>14}")
    print(f"{vmap:>8.1f}{grouped:>11.1f}{vmap / grouped:>14.2f}")


if __name__ == "__main__":
    main()
