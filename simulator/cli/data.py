"""`byzsim data`: fetch the datasets byzsim reads, with torchvision's own downloaders.

``byzsim data download NAME...`` puts both splits of each dataset where byzsim
looks for them: ``--data-root`` if given, else ``$BYZSIM_DATA``, else
``~/.cache/byzsim/data`` (created, so that later runs find it without
options). torchvision's mirror lists and checksums apply; nothing else in
byzsim touches the network.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from experiments import datasets
from experiments.paths import ENV_DATA, download_root
from experiments.tools import UserException

__all__ = ["DOWNLOADABLE", "add_parser", "download"]

DOWNLOADABLE = ("mnist", "fashionmnist", "cifar10", "cifar100")


def download(name: str, root: str | Path | None = None) -> Path:
    """Fetch both splits of dataset ``name`` into ``root`` (default: BYZSIM_DATA or ~/.cache/byzsim/data)."""
    if name not in DOWNLOADABLE:
        raise UserException(f"Dataset {name!r} cannot be downloaded: byzsim downloads {', '.join(DOWNLOADABLE)} "
                            f"({'digits ships with scikit-learn' if name == 'digits' else 'see byzsim list datasets'}).")
    folder = Path(root).expanduser() if root else download_root()
    folder.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        datasets.REGISTRY.get(name).read(folder, train, True)
    return folder


def add_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="download datasets (MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100)",
                          description="Fetch datasets with torchvision's downloaders into --data-root, else "
                                      f"${ENV_DATA}, else ~/.cache/byzsim/data, where byzsim then finds them. "
                                      "digits needs no download (it ships with scikit-learn).")
    actions = data.add_subparsers(dest="action", required=True)
    fetch = actions.add_parser("download", help="download datasets", allow_abbrev=False)
    fetch.add_argument("names", nargs="+", metavar="NAME", choices=DOWNLOADABLE, help=", ".join(DOWNLOADABLE))
    fetch.add_argument("--data-root", metavar="DIR", help=f"where to put them (default: ${ENV_DATA} or "
                                                           "~/.cache/byzsim/data)")
    fetch.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> int:
    for name in args.names:
        print(f"{name}: {download(name, args.data_root)}")
    return 0
