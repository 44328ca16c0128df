"""The committed results under results/: each study published, linked from the README, small, and
(where its run records are committed) agreeing with a fresh check of those records."""
import csv
import re
from pathlib import Path

import pytest

from simulator.studies import get, names
from simulator.studies.pipeline import claim_columns, claims_table

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
PUBLISHED = ("README.md", "claims.csv", "claims.md", "report.md", "table.csv")


@pytest.mark.parametrize("name", sorted(names()))
def test_every_study_is_published_and_linked_from_the_readme(name):
    folder = RESULTS / name
    assert all((folder / f).is_file() for f in PUBLISHED), f"results/{name}/ is not published"
    assert f"(results/{name}/README.md)" in (ROOT / "README.md").read_text()
    readme = (folder / "README.md").read_text()
    assert f"byzsim reproduce {name} " in readme and "Dataset: " in readme and "hours of runs" in readme


@pytest.mark.parametrize("name", sorted(names()))
def test_published_files_are_small(name):
    files = [p for p in (RESULTS / name).rglob("*") if p.is_file()]
    assert files and all(p.stat().st_size < 1_000_000 for p in files)


@pytest.mark.parametrize("name", [n for n in sorted(names()) if (RESULTS / n / "runs").is_dir()])
def test_committed_records_give_the_published_claims(name):
    """Every cell of claims.csv (verdicts and numbers on each accuracy shown) is what the claims say of the
    committed run records today."""
    with open(RESULTS / name / "claims.csv", newline="") as handle:
        published = list(csv.DictReader(handle))
    assert published == claims_table(get(name), RESULTS / name / "runs")


@pytest.mark.parametrize("name", sorted(names()))
def test_published_claims_show_final_beside_best(name):
    """A claims table shows the final accuracy beside the best (a late collapse shows), each with its verdict."""
    with open(RESULTS / name / "claims.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == claim_columns(get(name)) and {"ours (final)", "ours (best)"} <= set(header)
    shown = (RESULTS / name / "claims.md").read_text()
    assert "| ours (final) |" in shown and "| ours (best) |" in shown


def test_the_readme_links_only_existing_results():
    links = re.findall(r"\((results/[^)]+)\)", (ROOT / "README.md").read_text())
    assert links and all((ROOT / link).exists() for link in links)
