"""`metaloss report` through click's CliRunner, on a real tiny search and a wrong directory."""

import pytest
from click.testing import CliRunner

from metaloss.cli import main
from metaloss.search.results import read_search

from ..search.helpers import tiny_search

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory):
    return tiny_search(tmp_path_factory.mktemp("search") / "run")


def test_report_writes_the_report_and_prints_the_top_candidates(search_dir, tmp_path):
    result = invoke("report", search_dir, "--output", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert f"Wrote {tmp_path / 'out' / 'report.md'}" in result.output
    for name in ("fitness.png", "loss_shape.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == PNG_MAGIC
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("trial "))
    best = read_search(search_dir).best
    # The first row of the table is the best trial, with its score to 4 decimals.
    assert lines[header + 2].split()[:3] == [
        best.trial_id,
        str(best.generation + 1),
        f"{best.score:.4f}",
    ]
    top = [t.trial_id for t in read_search(search_dir).top(5)]
    assert [line.split()[0] for line in lines[header + 2 : header + 7]] == top
    assert f"metaloss train --loss {search_dir / 'best_loss.json'}" in result.output


def test_report_defaults_to_the_report_folder(search_dir):
    result = invoke("report", search_dir)
    assert result.exit_code == 0, result.output
    assert (search_dir / "report" / "report.md").is_file()


def test_a_directory_that_is_not_a_search_is_a_usage_error(tmp_path):
    result = invoke("report", tmp_path)
    assert result.exit_code == 2
    assert "Invalid value for argument `directory`" in result.output
    assert "search.json" in result.output
    missing = invoke("report", tmp_path / "missing")
    assert missing.exit_code == 2 and "does not exist" in missing.output
