"""The `byzsim` command (also `python -m simulator`).

Subcommands: `train` (one run; every Config field is an option), `list`
(what exists), `demo` (the quick-start benchmark on digits), `plot` (curves,
heatmap and table from result folders). Errors a user can cause end with one
line on stderr and exit status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import sys
import types
import typing
from collections.abc import Sequence

from experiments.tools import UserException
from simulator.config import Config

SECTIONS = ("aggregators", "attacks", "models", "datasets", "heterogeneity", "engines", "schedules")


# ----------------------------------------------------------------- parsing
def parse_value(text: str) -> object:
    """A scalar from the command line: bool, int, float, JSON, or the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_mapping(text: str) -> dict:
    """`{"m": 5}` (JSON) or `m=5,tau=10` into a dict."""
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise argparse.ArgumentTypeError(f"invalid JSON object: {err}") from None
        return value
    result = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected key=value, got {item!r}")
        result[key.strip()] = parse_value(value.strip())
    return result


def parse_int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per Config field, its help from the field's metadata."""
    hints = typing.get_type_hints(Config)
    for field in dataclasses.fields(Config):
        kind = hints[field.name]
        args = typing.get_args(kind) if isinstance(kind, types.UnionType) else ()
        base = next((a for a in args if a is not type(None)), kind)
        flag = "--" + field.name.replace("_", "-")
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = field.metadata["help"]
        if "default" not in help_text:
            help_text += f" (default: {default})"
        if base is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
            continue
        converter = {dict: parse_mapping, list: parse_int_list}.get(base, base)
        parser.add_argument(flag, type=converter, default=argparse.SUPPRESS, metavar=field.name.upper(), help=help_text)


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config of `--config FILE` (or defaults), overridden by the options given."""
    data = Config.load(args.config).to_dict() if args.config else {}
    names = {f.name for f in dataclasses.fields(Config)}
    data.update({k: v for k, v in vars(args).items() if k in names})
    return Config.from_dict(data)


# ---------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    from simulator.run import run

    config = config_from_args(args)
    result = run(config, progress=not args.quiet)
    s = result.summary
    print(f"{config.run_id()}: final accuracy {s['final_accuracy']:.4f}, best {s['best_accuracy']:.4f} -> {result.folder}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from simulator.catalogue import catalogue

    for section, entries in catalogue().items():
        if args.what and section != args.what:
            continue
        print(f"{section}:")
        width = max(len(name) for name, _ in entries) if entries else 0
        for name, description in entries:
            print(f"  {name:<{width}}  {description}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from simulator.demo import run_demo

    run_demo(args.output, steps=args.steps, seeds=args.seeds, progress=not args.quiet)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from simulator.plot import report

    written = report(args.folders, args.output)
    for path in written:
        print(path)
    return 0


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="byzsim", description="Byzantine-robust distributed training simulator.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="run one simulated training", description="Run one simulated training under attack. "
                           "Re-running the same command resumes an interrupted run, or returns a finished one.")
    train.add_argument("--config", metavar="FILE", help="JSON file of configuration fields; options given here override it")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_options(train)
    train.set_defaults(func=cmd_train)

    listing = sub.add_parser("list", help="list aggregators, attacks, models, datasets, ...")
    listing.add_argument("what", nargs="?", choices=SECTIONS, help="only this section")
    listing.set_defaults(func=cmd_list)

    demo = sub.add_parser("demo", help="small benchmark on digits: results and an accuracy plot")
    demo.add_argument("--output", default="results/runs/demo", help="output folder (default: results/runs/demo)")
    demo.add_argument("--steps", type=int, default=200, help="training steps per run (default: 200)")
    demo.add_argument("--seeds", type=int, default=2, help="seeds per configuration (default: 2)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=cmd_demo)

    plot = sub.add_parser("plot", help="accuracy curves, heatmap and table from result folders")
    plot.add_argument("folders", nargs="+", help="run folders, or folders holding run folders")
    plot.add_argument("--output", required=True, help="folder for accuracy.png, heatmap.png and table.csv")
    plot.set_defaults(func=cmd_plot)
    return parser


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory instead of returning it to the OS each step.

    Large temporaries are freed and re-allocated every step; returning them
    to the OS (mmap/munmap, heap trimming) cost ~40% of a CPU step here. Only
    in the command's entry point, never at import.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_max = -1, -4
    libc.mallopt(m_trim_threshold, 2**31 - 1)
    libc.mallopt(m_mmap_max, 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()
    try:
        return args.func(args)
    except (UserException, OSError) as err:  # OSError: an unwritable or unreadable path
        print(f"byzsim: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"byzsim: {err or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
