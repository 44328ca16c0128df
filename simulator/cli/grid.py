"""`byzsim grid FILE`: run (or list) the grids of a TOML file."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments.tools import UnavailableException, UserException
from simulator.core.plugin_record import explain
from simulator.core.store import varying
from simulator.grid import iter_status, load_grids, parse_shard, prepare, run_grid, shard_of
from simulator.grid.spec import parse_overrides

__all__ = ["MAX_EXIT", "add_log_option", "add_parser", "add_runner_options", "runner_options"]

MAX_EXIT = 100  # the exit status is the number of failed runs, capped below the shell's special values


def add_parser(sub: argparse._SubParsersAction) -> None:
    grid = sub.add_parser(
        "grid", help="run a benchmark grid from a TOML file (skips finished runs)",
        description="Run every combination of a grid file into one folder, one sub-folder per run id. Finished runs "
                    "are skipped, so an interrupted grid resumes; a failed run is recorded in errors/ and the exit "
                    "status is the number of failed runs. KEY=VALUE words after the file override that key in every "
                    "grid of the file (a JSON list sweeps: 'aggregator=[\"krum\",\"median\"]'). See docs/grids.md.")
    grid.add_argument("file", help="grid file (TOML)")
    grid.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                      help="set KEY in every grid of the file, replacing the file's value or list: steps=100, "
                           "seeds=2, 'aggregator=[\"krum\",\"median\"]' (a list sweeps); right after the file")
    grid.add_argument("--grid", metavar="NAME", help="only this named grid of the file (default: all)")
    grid.add_argument("--output", metavar="DIR", help="output folder (default: results/runs/<file name>, and "
                                                      "/<grid name> below it for a file of several grids)")
    add_runner_options(grid, "grid")
    add_log_option(grid)
    grid.add_argument("--append", action="store_true", help="allow an output folder that holds other runs")
    grid.add_argument("--list", action="store_true", help="print the run ids and their configurations; run nothing")
    grid.add_argument("--json", action="store_true", help="with --list: one JSON object per line")
    grid.set_defaults(func=run_command)


def add_log_option(parser: argparse.ArgumentParser) -> None:
    """``--log``: the trackers that also record each run (`simulator.core.loggers`); `byzsim train` has it too."""
    parser.add_argument("--log", metavar="NAMES", default="",
                        help="also log each run to these trackers, comma-separated: tensorboard, wandb, mlflow "
                             "(each needs its package: pip install 'byzsim[tensorboard]'; see docs/loggers.md); "
                             "results and run ids stay the same")


def add_runner_options(parser: argparse.ArgumentParser, what: str) -> None:
    """The grid runner's options, declared once for every command that runs a grid (``what``: grid or study)."""
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, in worker processes (default: 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per run (default: 1 with --jobs above 1, else torch's default)")
    parser.add_argument("--shard", metavar="I/N",
                        help=f"run only the I-th of N disjoint, balanced slices of the {what} (a job array)")
    parser.add_argument("--records", metavar="DIR",
                        help="keep a few-kilobyte record of each finished run in DIR, and count the runs recorded "
                             f"there as finished: a {what} carried across machines in a repository (docs/grids.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def runner_options(args: argparse.Namespace) -> dict:
    """`run_grid`'s keyword arguments from the runner options, checked (`UserException`) before anything runs."""
    shard = parse_shard(args.shard) if args.shard else None
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        raise UserException(f"--jobs and --threads must be at least 1, got {args.jobs} and {args.threads}.")
    if args.records is not None:
        _writable_folder(Path(args.records), "--records")
    return {"jobs": args.jobs, "threads": args.threads, "shard": shard, "progress": not args.quiet}


def _writable_folder(path: Path, option: str) -> None:
    """Create ``path`` if needed, or say in one line why it cannot take files: before any run is made."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".byzsim-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UserException(f"{option} {str(path)!r} cannot take files: {err.strerror or err}.") from None


def _own(root: Path, name: str, several: bool) -> Path:
    """One grid's folder under an output or records folder ROOT: ROOT, or ROOT/<grid name> for a file of several."""
    return root / name if several else root


def run_command(args: argparse.Namespace) -> int:
    options = runner_options(args)
    root = Path(args.output or Path("results/runs") / Path(args.file).stem)
    try:
        grids = load_grids(args.file, parse_overrides(args.overrides))
    except UserException as err:  # a plug-in's name: the grid's earlier output may say which plug-in provides it
        unknown = err if isinstance(err, UnavailableException) else err.__cause__
        if isinstance(unknown, UnavailableException) and explain(root, unknown) is not unknown:
            raise explain(root, unknown) from None
        raise
    several = len(grids) > 1
    outputs = {name: _own(root, name, several) for name in grids}
    if args.grid:
        if args.grid not in grids:
            raise UserException(f"{args.file} has no grid {args.grid!r}; it has {', '.join(sorted(grids))}.")
        grids = {args.grid: grids[args.grid]}
    configs = {name: prepare(grid, outputs[name], append=args.append) for name, grid in grids.items()}
    for grid in grids.values():
        print(grid.summary(), file=sys.stderr)
    if args.list:
        for name in grids:
            _print_listing(shard_of(configs[name], options["shard"]), args.json)
        return 0
    failed = 0
    for name, grid in grids.items():
        records = None if args.records is None else _own(Path(args.records), name, several)
        outcome = run_grid(grid, outputs[name], append=args.append, records=records, loggers=args.log, **options)
        print(f"grid {name!r} -> {outputs[name]}: {outcome.line()}", file=sys.stderr)
        failed += outcome.failed
    if failed:
        print(f"byzsim: {failed} run(s) failed; see errors/ in the output folder", file=sys.stderr)
    return min(failed, MAX_EXIT)


def _print_listing(configs: list, as_json: bool) -> None:
    rows = [c.to_dict() for c in configs]
    shown_fields = varying(rows, rows[0] if rows else ())
    for config, status in iter_status(configs):
        if as_json:
            print(json.dumps({"run_id": config.run_id(), "status": status, "config": config.to_dict()}))
        else:
            shown = " ".join(f"{k}={getattr(config, k)}" for k in shown_fields)
            print(f"{config.run_id()}  {status:<7}  {shown}")
