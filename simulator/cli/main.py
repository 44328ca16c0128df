"""The `byzsim` command (also `python -m simulator`).

Subcommands: `train` (one run; every Config field is an option), `list`
(what exists), `grid` (a benchmark grid from a TOML file), `report` (tables
and figures from a folder of runs), `reproduce` (a reproduction study). The command is the one place that
assembles the packages; each subcommand's work lives in its own package.
Errors a user can cause end with one line on stderr and exit status 2,
without a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

import torch

from experiments import plugins
from experiments.grammar import parse_mapping
from experiments.tools import UserException
from simulator.cli import data as data_command
from simulator.cli import grid as grid_command
from simulator.cli import studies as studies_command
from simulator.cli.catalogue import SECTIONS, catalogue
from simulator.core.migrate import migrate
from simulator.core.plugin_record import record as record_plugins
from simulator.core.config import DEFAULTS, Config
from simulator.core.run import run
from simulator.grid.order import expansion


# ----------------------------------------------------------------- parsing
def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per Config field, its help from the field's metadata."""
    for field in dataclasses.fields(Config):
        flag, help_text = "--" + field.name.replace("_", "-"), field.metadata["help"]
        if "default" not in help_text:
            help_text += f" (default: {field.default})"
        if field.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
        elif field.type == "bool | str":  # `--nesterov` alone is true, `--nesterov lookahead` a named form
            parser.add_argument(flag, nargs="?", const=True, type=_flag_value, default=argparse.SUPPRESS,
                                metavar="FORM", help=help_text)
            parser.add_argument("--no-" + flag[2:], dest=field.name, action="store_const", const=False,
                                default=argparse.SUPPRESS, help=f"the same as {flag} false")
        else:
            kind = {"int": int, "float": float}.get(field.type.split(" |")[0], str)  # "int | None" -> int
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, metavar=field.name.upper(), help=help_text)
    for name, what in SPEC_ARGS.items():
        parser.add_argument("--" + name.replace("_", "-"), default=argparse.SUPPRESS, metavar="K=V,...",
                            help=f"parameters of {what}, folded into its spec (k=v,k=v or JSON)")


def _flag_value(text: str) -> bool | str:
    """An option that is a switch or a named form: true/false as booleans, any other word as itself."""
    return {"true": True, "false": False}.get(text.strip().lower(), text.strip())


# Options folded into a spec field: `--model-args width=3` adds width=3 to the model's spec.
SPEC_ARGS = {"model_args": "the model constructor", "criterion_args": "the criterion",
             "aggregator_args": "the last rule of the aggregator chain", "attack_args": "the attack"}


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config of `--config FILE` (or defaults), overridden by the options given."""
    data = Config.load(args.config).to_dict() if args.config else {}
    data.update({k: v for k, v in vars(args).items() if k in DEFAULTS})
    sugar = {k: parse_mapping(v, "--" + k.replace("_", "-")) for k, v in vars(args).items() if k in SPEC_ARGS}
    return Config.from_dict(Config.upgrade({**data, **sugar}, quiet=True))


DIVERGED = 3  # `byzsim train`'s exit status for a run that diverged (2: a user error)


# ---------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    if args.threads < 0:
        raise UserException(f"--threads must be 0 (torch's default) or more, got {args.threads}.")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = config_from_args(args)
    record_plugins(config.output)
    result = run(config, progress=not args.quiet, loggers=args.log)
    if result is None:  # a worker rank of a distributed run: rank 0 reports
        return 0
    s = result.summary
    if s.get("diverged"):
        print(f"byzsim: {config.run_id()} diverged at step {s['steps']} (a loss or parameter became NaN or infinite);"
              f" its summary records it -> {result.folder}", file=sys.stderr)
        return DIVERGED
    print(f"{config.run_id()}: final accuracy {s['final_accuracy']:.4f}, best {s['best_accuracy']:.4f} -> {result.folder}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for section, entries in catalogue().items():
        if args.what and section != args.what:
            continue
        print(f"{section}:")
        width = max(len(name) for name, _ in entries) if entries else 0
        for name, description in entries:
            print(f"  {name:<{width}}  {description}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    for folder in args.folders:
        done = migrate(folder)
        print(f"{folder}: {done.renamed} runs renamed to their current ids, {done.current} already current"
              + "".join(f"\n  left alone, the new id is taken: {clash}" for clash in done.clashes))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from simulator.report import write_report  # lazy: start-up time (matplotlib, scipy)

    for path in write_report(args.folder, args.output, select=args.select, metric=args.metric,
                             expansion=expansion(args.folder)):  # the grid file's order of rules, attacks...
        print(path)
    return 0


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="byzsim", description="Byzantine-robust distributed training simulator.",
                                     allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="run one simulated training", description="Run one simulated training under attack. "
                           "Re-running the same command resumes an interrupted run, or returns a finished one.")
    train.add_argument("--config", metavar="FILE", help="configuration fields from a JSON file (a run's config.json "
                       "reruns its experiment) or a TOML file (FILE.toml, field = value lines as in a grid's "
                       "[defaults]); options given here override it")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--threads", type=int, default=1,
                       help="torch threads for the run (default 1: byzsim's models are small and a step is many "
                            "small kernels, where more threads mostly add overhead, the more so on a busy machine; "
                            "0 keeps torch's default of one per core, for big models)")
    grid_command.add_log_option(train)
    add_config_options(train)
    train.set_defaults(func=cmd_train)

    listing = sub.add_parser("list", help="list aggregators, attacks, models, datasets, ...")
    listing.add_argument("what", nargs="?", choices=SECTIONS, help="only this section")
    listing.set_defaults(func=cmd_list)

    grid_command.add_parser(sub)

    report = sub.add_parser("report", help="report.md, tables and figures from a folder of runs",
                            description="Write report.md (tables, worst case over attacks, heatmaps, curves) for "
                                        "every finished run below FOLDER. See docs/grids.md.")
    report.add_argument("folder", help="a folder holding run folders (e.g. a grid's output)")
    report.add_argument("--output", metavar="DIR", help="where to write the report (default: FOLDER)")
    report.add_argument("--metric", choices=("final", "best", "last5"), default="final",
                        help="accuracy shown in the tables: at the last evaluation, the best one, or the mean of "
                             "the last five (default: final)")
    report.add_argument("--select", metavar="FIELD",
                        help="pick, per aggregator, the value of FIELD (e.g. lr) with the best worst-case "
                             "validation accuracy over attacks, and report test accuracy there "
                             "(runs need --validation-split)")
    report.set_defaults(func=cmd_report)

    studies_command.add_parser(sub)
    data_command.add_parser(sub)

    migration = sub.add_parser("migrate", help="rename run folders and records to the current run ids",
                               description="Rewrite every run folder directly below each FOLDER (a grid's output "
                                           "or a --records folder) in the current configuration spelling and "
                                           "rename it to its current run id. Results are unchanged; only the ids "
                                           "moved when the configuration became specs. See docs/grids.md.")
    migration.add_argument("folders", nargs="+", metavar="FOLDER")
    migration.set_defaults(func=cmd_migrate)
    for command in sub.choices.values():
        command.allow_abbrev = False  # --nb-worker must not pass for --nb-workers
        command.add_argument("--plugins", metavar="SPEC", action="append",
                             help="load rules, attacks, datasets... from outside byzsim: a .py file or a module "
                                  "name, several separated by commas (also BYZSIM_PLUGINS; see docs/plugins.md)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plugins.load(args.plugins)  # before any name is looked up; grid workers inherit them (BYZSIM_PLUGINS)
        return args.func(args)
    except (UserException, OSError) as err:  # OSError: an unwritable or unreadable path
        print(f"byzsim: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"byzsim: {str(err) or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
