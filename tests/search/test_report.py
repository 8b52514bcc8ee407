"""write_report on a real tiny search, on one killed mid-generation and on one where all failed."""

import pytest

from metaloss.search.report import write_report

from .helpers import (
    fail_every_trial,
    generation_scores,
    kill_during_last_generation,
    read_json,
    tiny_search,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory):
    return tiny_search(tmp_path_factory.mktemp("search") / "run")


def table(markdown: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the Markdown table whose first column is ``first_header``, as dicts."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    headers = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append(dict(zip(headers, cells, strict=True)))
    return rows


def assert_figures(output):
    for name in ("fitness.png", "loss_shape.png"):
        data = (output / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, name
    assert not list(output.glob("*partial*"))  # atomic writes leave no temporary file


def test_report_writes_figures_and_markdown(search_dir):
    path = write_report(search_dir)
    assert path == search_dir / "report" / "report.md"
    assert_figures(search_dir / "report")
    markdown = path.read_text()
    assert "![best and median validation accuracy](fitness.png)" in markdown
    assert "![loss shapes](loss_shape.png)" in markdown
    assert "| dataset | spiral |" in markdown and "| population size | 5 |" in markdown
    assert "3 of 3 generations finished." in markdown
    best_loss = search_dir / "best_loss.json"
    assert f"metaloss train --loss {best_loss} --dataset spiral --model mlp" in markdown


def test_generation_table_matches_the_candidate_files(search_dir):
    markdown = write_report(search_dir).read_text()
    rows = table(markdown, "generation")
    # Expected numbers: each generation's trial scores, read from candidate.json files directly.
    scores = generation_scores(search_dir)
    history = read_json(search_dir / "trials" / "oracle.json")["cmaes"]["history"]
    assert len(rows) == len(history) == 3
    for row, record in zip(rows, history, strict=True):
        trained = scores[record["generation"]]
        assert row["generation"] == str(record["generation"] + 1)  # numbered from 1
        assert row["best"] == f"{max(trained):.4f}"
        assert row["trials"] == str(len(trained))
        assert row["rejected"] == str(record["rejected"])
        assert row["failed"] == str(record["failed"])


def test_top_table_and_totals(search_dir):
    markdown = write_report(search_dir).read_text()
    top = table(markdown, "rank")
    assert [r["rank"] for r in top] == ["1", "2", "3", "4", "5"]
    scores = sorted((s for ss in generation_scores(search_dir).values() for s in ss), reverse=True)
    assert [r["val accuracy"] for r in top] == [f"{s:.4f}" for s in scores[:5]]
    # The best row's θ, to 4 significant digits, is the saved best loss's.
    theta = read_json(search_dir / "best_loss.json")["config"]["theta"]
    assert [top[0][f"theta_{i}"] for i in range(8)] == [f"{t:.4g}" for t in theta]
    [totals] = table(markdown, "trials")
    trained = len(scores)
    assert totals["trials"] == str(trained) == totals["completed"]
    assert int(totals["rejected (not trained)"]) + trained == 15


def test_output_elsewhere(search_dir, tmp_path):
    path = write_report(search_dir, tmp_path / "elsewhere")
    assert path == tmp_path / "elsewhere" / "report.md"
    assert_figures(tmp_path / "elsewhere")


def test_a_killed_search_reports_its_generation_in_flight(search_dir, tmp_path):
    killed = kill_during_last_generation(search_dir, tmp_path / "killed")
    markdown = write_report(tmp_path / "killed").read_text()
    assert_figures(tmp_path / "killed" / "report")
    generation = killed["record"]["generation"] + 1
    assert f"Generation {generation} is in flight: 4 of 5 candidates served" in markdown
    assert "2 of 3 generations finished." in markdown
    assert len(table(markdown, "generation")) == 2
    assert "`best_loss.json` is not written yet" in markdown
    [totals] = table(markdown, "trials")
    assert totals["running"] == "1"


def test_a_search_where_every_candidate_failed_says_so(search_dir, tmp_path):
    fail_every_trial(search_dir, tmp_path / "failed")
    markdown = write_report(tmp_path / "failed").read_text()
    assert_figures(tmp_path / "failed" / "report")
    assert "No trial has completed" in markdown and "there is no best loss" in markdown
    assert "metaloss train --loss" not in markdown
    assert all(row["best"] == "-" for row in table(markdown, "generation"))
    [totals] = table(markdown, "trials")
    assert totals["completed"] == "0" and totals["diverged/failed"] == totals["trials"]


def test_not_a_search_directory(tmp_path):
    with pytest.raises(ValueError, match=r"search\.json and trials/oracle\.json"):
        write_report(tmp_path)
