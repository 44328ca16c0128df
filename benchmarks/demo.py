"""The demo grid (`examples/demo.toml`, what `make demo` runs) on the vmap and the grouped engine, side by side.

Each round runs the whole grid once per engine, alternating (vmap, grouped, vmap, ...), each time with
`byzsim grid --jobs 2` in a fresh process and a fresh output folder, so a busy machine slows both alike;
the table gives the median wall time of each and their ratio. The engine is the only change to the file.

    python benchmarks/demo.py             # 3 rounds
    python benchmarks/demo.py --rounds 1 --jobs 1
"""
from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {engine: [] for engine in ENGINES}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {engine: grid_file(folder, engine) for engine in ENGINES}
        for r in range(args.rounds):
            for engine in ENGINES:
                times[engine].append(timed_grid(files[engine], folder / f"{engine}-{r}", args.jobs))
    vmap, grouped = (statistics.median(times[engine]) for engine in ENGINES)
    print(f"demo grid ({DEMO.relative_to(ROOT)}), --jobs {args.jobs}, median of {args.rounds} alternating rounds")
    print(f"{'vmap s':>8}{'grouped s':>11}{'vmap/grouped':>14}")
    print(f"{vmap:>8.1f}{grouped:>11.1f}{vmap / grouped:>14.2f}")


if __name__ == "__main__":
    main()
