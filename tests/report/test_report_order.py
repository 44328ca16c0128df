"""A report follows the grid file's order of rules, attacks and setting values (the runner's grid.toml copy),
puts what the grid does not name after, by name, and keeps the order by name without a grid file."""
import csv
import logging

import pytest

from simulator import Config
from simulator.cli.main import main
from simulator.grid.order import expansion
from simulator.report import load, summarise, worst_cases, write_report
from simulator.report.order import Order, ranks
from simulator.report.plots import plots

GRID = '''dataset = "digits"
nb_workers = 7
nb_decl_byz = 1
aggregator = ["median", "average", "krum"]
attack = ["signflip", "alie"]
lr = [0.3, 0.05]
'''
ORDER = [(a, t) for a in ("median", "average", "krum") for t in ("signflip", "alie")]


@pytest.fixture
def folder(tmp_path, finished_run):
    """The grid's runs (one seed, written by hand) and its grid.toml, as `byzsim grid` leaves them."""
    for aggregator, attack in ORDER:
        for lr in (0.3, 0.05):
            finished_run(Config(dataset="digits", nb_workers=7, nb_decl_byz=1, aggregator=aggregator, attack=attack,
                                lr=lr, output=str(tmp_path)), [0.2, 0.5])
    (tmp_path / "grid.toml").write_text(GRID)
    return tmp_path


def _table(path) -> list[tuple[str, str, str]]:
    with open(path / "table.csv") as handle:
        return [(r["lr"], r["aggregator"], r["attack"]) for r in csv.DictReader(handle)]


def test_tables_and_page_keep_the_grid_files_order(folder):
    write_report(folder, diagnostics=False, formats=("png",), expansion=expansion(folder))
    assert _table(folder) == [(lr, a, t) for lr in ("0.3", "0.05") for a, t in ORDER]
    with open(folder / "worst_case.csv") as handle:
        assert [r["aggregator"] for r in csv.DictReader(handle)][:3] == ["median", "average", "krum"]
    page = (folder / "report.md").read_text()
    assert "- Aggregators: median, average, krum." in page and "- Attacks: signflip, alie " in page
    assert "- Varies: `lr`: 0.3, 0.05." in page
    assert "| aggregator | signflip | alie |" in page
    rows = [line.split(" |")[0] for line in page.split("### lr=0.3\n", 1)[1].splitlines() if line.startswith("| ")]
    assert rows[2:5] == ["| median", "| average", "| krum"]
    assert page.index("### lr=0.3") < page.index("### lr=0.05")


def test_the_command_reads_the_grid_file_the_runner_copied(folder, capsys):
    assert main(["report", str(folder)]) == 0
    assert _table(folder)[:2] == [("0.3", "median", "signflip"), ("0.3", "median", "alie")]


def test_without_a_grid_file_rules_and_attacks_go_by_name(folder):
    (folder / "grid.toml").unlink()
    assert expansion(folder) == []
    write_report(folder, diagnostics=False, formats=("png",), expansion=expansion(folder))
    assert _table(folder) == [(lr, a, t) for lr in ("0.05", "0.3") for a in ("average", "krum", "median")
                              for t in ("alie", "signflip")]


def test_runs_the_grid_does_not_name_come_after_in_the_default_order(folder, finished_run):
    for aggregator in ("trmean", "cclip"):
        finished_run(Config(dataset="digits", nb_workers=7, nb_decl_byz=1, aggregator=aggregator, attack="none",
                            lr=0.3, output=str(folder)), [0.2, 0.5])
    design = load(folder, expansion=expansion(folder))
    assert design.aggregators == ["median", "average", "krum", "cclip", "trmean"]
    assert design.attacks == ["signflip", "alie", "none"]


def test_a_grid_file_that_no_longer_loads_leaves_the_default_order(folder, caplog):
    (folder / "grid.toml").write_text(GRID + "no_such_field = 1\n")
    assert expansion(folder) == []
    assert "does not load" in caplog.text
    assert load(folder, expansion=expansion(folder)).aggregators == ["average", "krum", "median"]


def test_a_grid_naming_a_plugin_not_loaded_is_left_out_quietly(folder, caplog):
    """The runs' own reading says which plug-in is missing, in one line: the order adds no warning of its own."""
    (folder / "grid.toml").write_text(GRID.replace('"krum"', '"no-such-rule"'))
    with caplog.at_level(logging.WARNING, logger="byzsim"):
        assert expansion(folder) == []
    assert "does not load" not in caplog.text


def test_ranks_are_first_appearances_and_the_order_puts_unranked_names_after():
    expanded = [{"aggregator": "b", "attack": "x", "lr": 0.1}, {"aggregator": "a", "attack": "x", "lr": [1, 2]},
                {"aggregator": "b", "attack": "none", "lr": 0.1}]
    assert ranks(expanded) == {"aggregator": {"b": 0, "a": 1}, "attack": {"x": 0, "none": 1},
                               "lr": {0.1: 0, "[1, 2]": 1}}
    order = Order.of(ranks(expanded), [("b", "x", {"aggregator": "b", "attack": "x"}),
                                       ("a", "none", {"aggregator": "a", "attack": "none"})])
    assert sorted(["c", "a", "b", "aa"], key=order.aggregator) == ["b", "a", "aa", "c"]
    assert sorted(["y", "none", "x", "none"], key=order.attack) == ["x", "none", "none", "y"]
    assert sorted([None, 0.5, "[1, 2]", 0.1], key=lambda v: order.value("lr", v)) == [0.1, "[1, 2]", None, 0.5]


def test_figures_keep_the_grid_files_order(folder):
    design = load(folder, expansion=expansion(folder))
    summaries = summarise(design)
    figures = {p.stem: p.figure for p in plots(design, summaries, worst_cases(summaries, "final", design.order),
                                               "final", diagnostics=False)}
    heatmap = figures["heatmap-attacks-lr=0.3"].axes[0]
    assert [t.get_text() for t in heatmap.get_yticklabels()] == ["median", "average", "krum"]
    assert [t.get_text() for t in heatmap.get_xticklabels()] == ["signflip", "alie"]
    curves = figures["curves-lr=0.3"]
    assert [ax.get_title() for ax in curves.axes if ax.get_visible()] == ["attack: signflip", "attack: alie"]
    assert [t.get_text() for t in curves.legends[0].get_texts()] == ["median", "average", "krum"]
