"""The `byzsim` command line: the one layer that assembles the others."""
from simulator.cli.main import main

__all__ = ["main"]
