"""What a benchmark run keeps of its documents when it rewrites them.

- A reading written by hand, between `<!-- notes -->` and `<!-- /notes -->`: a run writes its
  generated text, then the reading as it stood in the file, then any generated text that belongs
  after it (the feed's query plans). Each reading says which run it reads.
- The summaries in docs/benchmarks.md, one per benchmark that has its own document (feed,
  inbound email, dashboard), between `<!-- summary:NAME -->` and `<!-- /summary:NAME -->`: each
  run rewrites its own (`summarise`) and keeps the others, so the index holds the latest figures
  of every benchmark with the command that made them. The real-time run writes the rest of that
  file.
"""

from __future__ import annotations

import re
from pathlib import Path

START, END = "<!-- notes -->", "<!-- /notes -->"
INDEX = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SUMMARIES_HEADING = "## The other benchmarks (each run rewrites its own summary)"
_SUMMARY = re.compile(r"<!-- summary:([a-z-]+) -->\n.*?<!-- /summary:\1 -->\n", re.S)


def kept(doc: Path) -> str:
    """The hand-written reading of `doc` ('' if it has none): from the start marker to the end
    marker, or to the end of the file where there is none."""
    text = doc.read_text() if doc.exists() else ""
    if START not in text:
        return ""
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def summaries(doc: Path) -> dict[str, str]:
    """The summaries in `doc` by name, each with its markers, in the order they stand."""
    text = doc.read_text() if doc.exists() else ""
    return {match.group(1): match.group(0) for match in _SUMMARY.finditer(text)}


def write(doc: Path, generated: str, after: str = "") -> None:
    """Write `generated`, the summaries and the reading kept from the current `doc`, then
    `after`."""
    parts = [generated.rstrip("\n"), ""]
    if kept_summaries := summaries(doc):
        parts += [SUMMARIES_HEADING, "", *kept_summaries.values()]
    parts += [START, kept(doc), END, ""]
    if after:
        parts += ["", after.rstrip("\n"), ""]
    doc.write_text("\n".join(parts))


def summary(heading: str, intro: str, table: str | list[str]) -> str:
    """A summary's text: its heading, a line of what ran and where the rest is, its table."""
    rows = table if isinstance(table, list) else [table]
    return "\n".join([f"### {heading}", "", intro, "", *rows])


def summarise(name: str, text: str, doc: Path = INDEX) -> None:
    """Put `text` in `doc` as the summary `name`: in place of the one it had, or after the
    others (before the reading) when it is the first of its name."""
    block = f"<!-- summary:{name} -->\n{text.strip()}\n<!-- /summary:{name} -->\n"
    current = doc.read_text() if doc.exists() else ""
    if (old := summaries(doc).get(name)) is not None:
        doc.write_text(current.replace(old, block, 1))
        return
    if others := list(summaries(doc).values()):
        last = others[-1]
        doc.write_text(current.replace(last, last + "\n" + block, 1))
        return
    section = f"{SUMMARIES_HEADING}\n\n{block}\n"
    if START in current:
        doc.write_text(current.replace(START, section + START, 1))
    else:
        doc.write_text(current.rstrip("\n") + ("\n\n" if current else "") + section)
