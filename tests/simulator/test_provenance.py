"""What a set of runs was made with, in words, from their summaries."""
from simulator.core.provenance import machine, made_with, versions

V = {"byzsim": "0.1.0", "torch": "2.9.0", "python": "3.11.7"}


def test_runs_made_on_one_machine_name_it_once():
    made = made_with([{"machine": "A, 2 CPU cores", "torch_threads": 1, "versions": V}] * 3)
    assert made == {"machine": "A, 2 CPU cores, 1 torch thread a run",
                    "versions": "byzsim 0.1.0, torch 2.9.0, Python 3.11.7"}


def test_runs_spread_over_machines_name_each_with_its_count_and_the_unknown_ones():
    summaries = ([{"machine": "B", "torch_threads": 2, "versions": V}] * 2 + [{"machine": "A", "versions": V}]
                 + [{"versions": V}] * 4)  # records from before the summary kept the machine
    assert made_with(summaries)["machine"] == ("B, 2 torch threads a run (2 runs); A (1 run); "
                                               "unknown for 4 runs (made before a run's summary kept it)")
    assert made_with(summaries)["versions"] == "byzsim 0.1.0, torch 2.9.0, Python 3.11.7"
    assert made_with([])["machine"] == "unknown (no runs)"


def test_this_process_describes_itself():
    assert set(versions()) == {"byzsim", "torch", "python"}
    assert "CPU cores" in machine()
