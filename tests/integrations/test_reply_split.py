"""The new text of a reply: the header scan that tries only line starts finds exactly what the
library's own scan finds, and `split_reply` answers as the library does."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mailparser_reply import EmailReplyParser

from integrations.email import parsing

# Lines that start (or almost start) a quoted message in the six languages, and ordinary ones.
LINES = [
    "On Mon, 3 Feb 2025 at 10:12, Maria Garcia <maria@acme.example> wrote:",
    "> On Tue, Bob wrote:",
    "Am 03.02.2025 um 10:12 schrieb Maria Garcia <maria@acme.example>:",
    "Le lun. 3 févr. 2025 à 10:12, Maria a écrit :",
    "El lun, 3 feb 2025, Maria escribió:",
    "Il giorno lun 3 feb 2025, Maria ha scritto:",
    "Op ma 3 feb 2025 schreef Maria:",
    "From: Maria Garcia <maria@acme.example>",
    "Sent: Monday, February 3, 2025 10:12 AM",
    "To: Alice",
    "Subject: Re: quote",
    "*From:* Maria",
    "Von: Maria",
    "Gesendet: Montag",
    "De : Maria",
    "-----Original Message-----",
    "----- Original Message -----",
    "> quoted line",
    ">",
    "",
    " ",
    "Thanks, see you Tuesday.",
    "Best regards,",
    "--",
    "Sent from my iPhone",
    "From the desk of nobody in particular: wrote: on",
    "\r",
]


def _library_findall(text: str) -> list[Any]:
    header = parsing._REPLY_EXPRESSIONS["_header_regex"]
    return header.regex.findall(text)


def test_the_header_scan_is_line_anchored() -> None:
    # A new version of the library with an alternative that can start mid-line would fall back
    # to its own scan; this one is the fast one.
    assert isinstance(parsing._REPLY_EXPRESSIONS["_header_regex"], parsing._LineAnchoredFinder)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.one_of(st.sampled_from(LINES), st.text(alphabet="ab :>-\n*", max_size=12)),
        max_size=30,
    ),
    st.sampled_from(["\n", "\n\n", "\r\n", " \n"]),
)
def test_the_line_anchored_scan_finds_what_the_library_finds(lines: list[str], sep: str) -> None:
    text = sep.join(lines)
    header = parsing._REPLY_EXPRESSIONS["_header_regex"]
    assert header.findall(text) == _library_findall(text)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(LINES), max_size=25))
def test_split_reply_answers_as_the_library_does(lines: list[str]) -> None:
    text = "\n".join(lines)
    library = EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl"])
    expected: tuple[str, str]
    if not text.strip():
        expected = ("", "")
    else:
        reply = library.read(text=text[: parsing.REPLY_WINDOW]).replies[0]
        new_text = (reply.body or "").strip()
        expected = (new_text or text.strip(), (reply.signatures or "").strip())
    assert parsing.split_reply(text) == expected


def test_a_quoted_reply_keeps_only_the_new_text() -> None:
    text = (
        "Sounds good, let's sign on Friday.\n\n"
        "On Mon, 3 Feb 2025 at 10:12, Maria Garcia <maria@acme.example> wrote:\n"
        "> Can we move the call?\n"
    )
    assert parsing.split_reply(text) == ("Sounds good, let's sign on Friday.", "")
