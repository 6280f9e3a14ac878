"""Readings written by hand in a benchmark's document, kept when a run rewrites the figures.

A run writes its generated text, then the reading between the markers as it stood in the file,
then any generated text that belongs after it (the feed's query plans). Each reading says which
run it reads.
"""

from __future__ import annotations

from pathlib import Path

START, END = "<!-- notes -->", "<!-- /notes -->"


def kept(doc: Path) -> str:
    """The hand-written reading of `doc` ('' if it has none): from the start marker to the end
    marker, or to the end of the file where there is none."""
    text = doc.read_text() if doc.exists() else ""
    if START not in text:
        return ""
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def write(doc: Path, generated: str, after: str = "") -> None:
    """Write `generated`, the reading kept from the current `doc`, then `after`."""
    parts = [generated.rstrip("\n"), "", START, kept(doc), END, ""]
    if after:
        parts += ["", after.rstrip("\n"), ""]
    doc.write_text("\n".join(parts))
