"""Tables, figures and report.md from a folder of finished runs (files only, no training).

    from simulator.report import write_report
    write_report("results/grid", select="lr")   # -> [.../table.csv, ..., .../report.md]

Runs that differ only by their seed form a group; the identity fields that vary
across runs, other than the aggregator, the attack and the seed, form a group's
setting. The page shows, per setting, each rule's accuracy under each attack,
its worst case over attacks and the best rule (see docs/grids.md).
"""
from simulator.report.load import Design, Group, load
from simulator.report.selection import Choice, select
from simulator.report.stats import METRICS, Summary, WorstCase, mean_ci, summarise, worst_cases
from simulator.report.write import write_report

__all__ = ["METRICS", "Choice", "Design", "Group", "Summary", "WorstCase", "load", "mean_ci", "select",
           "summarise", "worst_cases", "write_report"]
