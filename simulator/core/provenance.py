"""What a result was made with: software versions and the machine.

Each run's summary keeps both, with its torch thread count (on a CPU the
count splits floating-point sums, so it can change a run's last bits), so
that a study whose runs were spread over several machines (through its run
records) can say which machines made them, and how.
"""
from __future__ import annotations

import os
import platform
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import torch

__all__ = ["machine", "made_with", "versions"]


def versions() -> dict[str, str]:
    """byzsim, torch and Python versions of this process."""
    return {"byzsim": version("byzsim"), "torch": torch.__version__, "python": platform.python_version()}


def machine() -> str:
    """This machine in words: CPU model, core count, operating system."""
    cpu = platform.processor() or platform.machine()
    try:
        models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")]
        cpu = models[0] if models else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}"


def _runs(k: int) -> str:
    return f"{k} run{'' if k == 1 else 's'}"


def _tally(labels: list[str | None]) -> str:
    """One label when every run has it, else each with its number of runs (None: a run that did not keep it)."""
    counts = Counter(labels)
    unknown = counts.pop(None, 0)
    if not unknown and len(counts) <= 1:
        return next(iter(counts), "unknown (no runs)")
    parts = [f"{label} ({_runs(k)})" for label, k in counts.most_common()]
    return "; ".join(parts + ([f"unknown for {_runs(unknown)} (made before a run's summary kept it)"]
                              if unknown else []))


def _machine_label(summary: dict) -> str | None:
    threads = summary.get("torch_threads")
    if summary.get("machine") is None:
        return None
    return summary["machine"] + (f", {threads} torch thread{'' if threads == 1 else 's'} a run" if threads else "")


def made_with(summaries: list[dict]) -> dict[str, str]:
    """The machines (with torch threads) and versions that made a set of runs, in words, from their summaries.

    A study resumed from run records may have been made on several machines;
    each one is named with its number of runs.
    """
    return {"machine": _tally([_machine_label(s) for s in summaries]),
            "versions": _tally([f"byzsim {v['byzsim']}, torch {v['torch']}, Python {v['python']}"
                                if (v := s.get("versions")) else None for s in summaries])}
