"""A benchmark run rewrites its figures and keeps what others wrote in the same document: the
reading written by hand, and in docs/benchmarks.md the other benchmarks' summaries."""

from __future__ import annotations

from pathlib import Path

from bench import notes


def test_a_rewrite_keeps_the_reading_and_every_summary(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    notes.write(doc, "# Real time\n\nfirst run")
    notes.summarise("inbound", "### Inbound\n\n683 msg/s", doc)
    notes.summarise("feed", "### Feed\n\n8.8x", doc)
    doc.write_text(doc.read_text().replace(notes.START + "\n", notes.START + "\nread by hand\n"))

    notes.write(doc, "# Real time\n\nsecond run")

    text = doc.read_text()
    assert "second run" in text and "first run" not in text
    assert notes.kept(doc) == "read by hand"
    assert list(notes.summaries(doc)) == ["inbound", "feed"]
    assert "683 msg/s" in text and "8.8x" in text
    assert text.count(notes.SUMMARIES_HEADING) == 1
    # The figures first, then the summaries, then the reading.
    assert text.index("second run") < text.index("683 msg/s") < text.index("read by hand")


def test_a_summary_replaces_its_own_and_no_other(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    notes.write(doc, "# Real time")
    notes.summarise("inbound", "364 msg/s", doc)
    notes.summarise("feed", "8.8x", doc)

    notes.summarise("inbound", "683 msg/s", doc)

    text = doc.read_text()
    assert "364 msg/s" not in text and text.count("683 msg/s") == 1
    assert list(notes.summaries(doc)) == ["inbound", "feed"]
    assert text.index("683 msg/s") < text.index(notes.START)


def test_a_summary_goes_into_a_document_without_a_reading(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    notes.summarise("inbound", "683 msg/s", doc)
    notes.summarise("inbound", "700 msg/s", doc)
    assert list(notes.summaries(doc)) == ["inbound"]
    assert "700 msg/s" in doc.read_text() and notes.kept(doc) == ""


def test_a_summary_is_its_heading_a_line_and_its_table() -> None:
    rows = ["| a | b |", "|---|---|", "| 1 | 2 |"]
    text = notes.summary("Feed (issue 3)", "`python -m bench.feed`, run now.", rows)
    assert text.splitlines() == [
        "### Feed (issue 3)",
        "",
        "`python -m bench.feed`, run now.",
        "",
        *rows,
    ]
    assert notes.summary("X", "y", "\n".join(rows)) == notes.summary("X", "y", rows)
