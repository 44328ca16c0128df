"""Benchmark grids: a TOML file of Config fields -> many runs in one folder.

    from simulator.grid import load_grids, run_grid
    (grid,) = load_grids("examples/demo.toml").values()
    run_grid(grid, "results/runs/demo", jobs=2)

`byzsim grid FILE` is the same from the shell. The grid uses a run's public
face only (`Config`, `run`, the run folder); see docs/grids.md.
"""
from simulator.grid.runner import GridOutcome, iter_status, parse_shard, prepare, run_grid, shard_of
from simulator.grid.spec import Grid, load_grids

__all__ = ["Grid", "GridOutcome", "load_grids", "run_grid", "prepare", "shard_of", "parse_shard", "iter_status"]
