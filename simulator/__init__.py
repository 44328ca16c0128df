"""byzsim's simulator: the training loop under attack, its results and its command.

    from simulator import Config, run
    result = run(Config(dataset="digits", aggregator="krum", attack="alie",
                        nb_workers=25, nb_decl_byz=5, steps=300))
    result.summary["final_accuracy"]
    table = load_runs("results/runs")  # one row per finished run: config fields and summary numbers
    load_plugins("examples/plugins/normfilter.py")  # rules, attacks... from outside byzsim (docs/plugins.md)
"""
from experiments.plugins import load as load_plugins
from simulator.core.config import Config
from simulator.core.run import run
from simulator.core.store import RunResult, load_result, load_runs

__all__ = ["Config", "RunResult", "load_plugins", "load_result", "load_runs", "run"]
