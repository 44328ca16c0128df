"""The quick-start benchmark: a few aggregators under a few attacks on digits.

Every run is an ordinary `run(Config(...))` stored under `<output>/runs/`, so
re-running the demo reuses finished runs; the accuracy curves, the heatmap and
the table are written to `<output>/`.
"""
from __future__ import annotations

import itertools
from pathlib import Path

from tqdm.auto import tqdm

from simulator.config import Config
from simulator.plot import report
from simulator.run import run

AGGREGATORS = ("average", "median", "trmean", "krum", "nnm>cclip")
# (attack, parameters): strong enough on digits that the unprotected average visibly breaks.
ATTACKS = (("none", {}), ("alie", {"z": 1.5}), ("ipm", {"epsilon": 10.0}), ("gaussian", {"std": 100.0}))
BASE = dict(dataset="digits", nb_workers=15, nb_decl_byz=3, batch_size=32, lr=0.1, momentum=0.9,
            momentum_at="worker", eval_every=25, checkpoint_every=1000)


def demo_configs(output: str | Path, steps: int, seeds: int) -> list[Config]:
    """The demo's grid: AGGREGATORS x ATTACKS x seeds."""
    return [Config(**BASE, aggregator=agg, attack=attack, attack_args=args, steps=steps, seed=seed,
                   output=str(Path(output) / "runs"))
            for agg, (attack, args), seed in itertools.product(AGGREGATORS, ATTACKS, range(1, seeds + 1))]


def run_demo(output: str | Path = "results/runs/demo", steps: int = 200, seeds: int = 2, progress: bool = True) -> list[Path]:
    """Run the grid and write its report; returns the report's files."""
    configs = demo_configs(output, steps, seeds)
    for config in tqdm(configs, desc="demo runs", disable=not progress):
        run(config, progress=False)
    written = report([config.folder() for config in configs], output)
    for path in written:
        print(path)
    return written
