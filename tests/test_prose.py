"""Numbers typed in a verdict's prose must be numbers the report's tables print (prose.py): a
typed number the data does not give makes the spec's verdict out of date, and each committed
report opens with a summary of at most 10 lines whose numbers its tables print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import REPO, small_spec, write_spec
from overparam.cli import app
from overparam.prose import typed_numbers, untraced_numbers

TABLES = "| 1-layer | 0.1341 | 65,000 | 70,000 | 0.0001 | 920000 | 0.000237 | 2.013 |\n"


@pytest.mark.parametrize(
    ("prose", "untraced"),
    [
        ("ends at 0.134, overtaking at 6.5–7e4 steps", []),  # printed precision: 0.134 is 0.1341; a range shares its exponent
        ("1e-4 diverges at ≈920k; its pick 2.37e-4; 2.01× closer", []),
        ("ends 2× closer with 3 seeds and 8 of 10 batches", []),  # counts up to 10 are exempt
        ("ends ≈5% below", ["5%"]),  # a percentage is never in a table: quote the two numbers
        ("ends at 0.07", ["0.07"]),  # one significant digit must match exactly
        ("ends at 0.1342", ["0.1342"]),  # the table prints 0.1341
        ("within 2^(1/4) of the edge", []),  # a formula, not a measured number
    ],
)
def test_a_typed_number_is_traced_to_the_tables_at_its_printed_precision(prose: str, untraced: list[str]) -> None:
    assert untraced_numbers(prose, TABLES) == untraced


def test_numbers_outside_tables_do_not_count() -> None:
    """A number in the report's prose (the paper's reading text, say) is no evidence of the data."""
    assert untraced_numbers("ends at 0.5", "the paper reads ≈0.5\n" + TABLES) == ["0.5"]


def test_ranges_and_thousands_are_read_as_printed() -> None:
    assert [(t.value, t.digits) for t in typed_numbers("6.5–7e4 and 1,000,000 and 920k")] == [
        (65000.0, 2),
        (70000.0, 1),
        (1000000.0, 7),
        (920000.0, 3),
    ]


def test_a_verdict_typing_a_number_the_data_does_not_give_is_out_of_date(tmp_path: Path) -> None:
    store, reports = tmp_path / "runs.sqlite", tmp_path / "reports"
    verdict = {"status": "reproduced", "observed": "the shallow model ends at 123.4 from its optimum"}
    result = CliRunner().invoke(app, ["run", str(write_spec(tmp_path, small_spec(verdict=verdict))), "--store", str(store), "--reports", str(reports)])
    assert result.exit_code == 1, result.output
    assert "types numbers the report's tables do not print (123.4)" in result.output
    report = (reports / "tiny.md").read_text()
    assert "verdict is **out of date**" in report and "(123.4)" in report


COMMITTED = sorted(p for p in (REPO / "reports").glob("*.md") if p.name != "README.md")


@pytest.mark.parametrize("report", COMMITTED, ids=lambda p: p.stem)
def test_every_committed_report_opens_with_a_summary_of_at_most_10_lines_whose_numbers_it_prints(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    summary = text.split("\n## ", 1)[0]
    lines = [line for line in summary.splitlines() if line.strip()]
    assert len(lines) <= 10, summary
    bullets = "\n".join(line for line in lines if line.startswith("- "))
    assert untraced_numbers(bullets, text) == [], bullets


def test_the_index_is_at_most_900_words() -> None:
    index = (REPO / "reports" / "README.md").read_text(encoding="utf-8")
    assert len(re.findall(r"\S+", index)) <= 900
