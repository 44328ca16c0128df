"""`byzsim reproduce NAME`: run a reproduction study and check its claims; `--list` names them."""
from __future__ import annotations

import argparse
import sys

from experiments.tools import UserException
from simulator.cli.grid import MAX_EXIT, add_log_option, add_runner_options, runner_options

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    reproduce = sub.add_parser(
        "reproduce", help="run a reproduction study and check the paper's claims",
        description="Run a study's grid (on the paper's dataset when found locally, else Fashion-MNIST), then write "
                    "its report and claims table (claims.md, claims.csv). Finished runs are skipped, so an "
                    "interrupted study resumes. See docs/studies.md.")
    reproduce.add_argument("name", nargs="?", help="the study (see --list)")
    reproduce.add_argument("--list", action="store_true", help="name the studies and their claims")
    reproduce.add_argument("--quick", action="store_true",
                           help="the quick variant: one seed, fewer steps, part of the grid (minutes)")
    reproduce.add_argument("--dataset", help="run on this dataset instead of the paper's")
    reproduce.add_argument("--data-root", metavar="DIR", help="folder holding the paper's dataset files")
    add_runner_options(reproduce, "study")
    add_log_option(reproduce)
    reproduce.add_argument("--output", metavar="DIR",
                           help="folder of the runs and the report (default: results/runs/studies/NAME[-quick])")
    reproduce.add_argument("--publish", metavar="DIR",
                           help="also write README.md, the CSV tables and PNG figures there (e.g. results/NAME)")
    reproduce.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from simulator.studies import get, names, reproduce  # lazy: start-up time (matplotlib, scipy via report)
    from simulator.studies.pipeline import SMOKE  # lazy: as above

    if args.list:
        for name in names():
            study = get(name)
            print(f"{name}: {study.citation}, \"{study.title}\" (paper dataset: {study.paper_dataset})")
            for claim in study.claims:
                print(f"  - {claim.text}")
        return 0
    if not args.name:
        raise UserException(f"Name a study ({', '.join(names())}), or pass --list.")
    done = reproduce(args.name, quick=args.quick, dataset=args.dataset, data_root=args.data_root,
                     output=args.output, publish=args.publish, records=args.records, loggers=args.log,
                     **runner_options(args))
    print(f"study {args.name!r} on {done.dataset} ({done.dataset_note}) -> {done.output}: {done.outcome.line()}",
          file=sys.stderr)
    if done.verdicts is None:
        print("not every run of the study has finished yet: run the same command again (or the remaining shards) "
              "to write the report and the claims", file=sys.stderr)
    else:
        if args.quick:
            print(SMOKE, file=sys.stderr)
        for claim, verdict in zip(done.study.claims, done.verdicts):
            status = f"{verdict.status} (smoke test)" if args.quick else verdict.status
            print(f"{status:>15}: {claim.text} (ours: {verdict.ours}; paper: {verdict.paper})")
        print(f"report: {done.output / 'report.md'}, claims: {done.output / 'claims.md'}", file=sys.stderr)
    return min(done.outcome.failed, MAX_EXIT)
