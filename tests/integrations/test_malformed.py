"""A corpus of broken mail: each message reaches a final status with a reason, and nothing
raises out of the parser or the processing action. Plus a property test of the parser."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.email.parsing import UnreadableEmail, parse_email, peek_message_id
from integrations.models import InboundEmail
from tests.conftest import Cast
from tests.integrations.messages import email, ingest

HEAD = b"From: Maria <maria@acme.example>\r\nTo: alice@tidings.example\r\nSubject: broken\r\n"


def _nested(depth: int) -> bytes:
    parts = [HEAD, b"MIME-Version: 1.0\r\n"]
    for level in range(depth):
        parts.append(
            f"Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n".encode()
        )
    parts.append(b"Content-Type: text/plain\r\n\r\ndeep inside\r\n")
    for level in reversed(range(depth)):
        parts.append(f"--b{level}--\r\n".encode())
    return b"".join(parts)


def _many_parts(count: int) -> bytes:
    body = [HEAD, b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"]
    for i in range(count):
        body.append(f"--x\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n".encode())
    body.append(b"--x--\r\n")
    return b"".join(body)


CORPUS: dict[str, bytes] = {
    "broken boundary": HEAD
    + b"Content-Type: multipart/mixed; boundary=nope\r\n\r\n"
    + b"--other\r\nContent-Type: text/plain\r\n\r\nhello\r\n",
    "missing boundary": HEAD + b"Content-Type: multipart/alternative\r\n\r\nhello\r\n",
    "unterminated multipart": HEAD
    + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    + b"--b\r\nContent-Type: text/plain\r\n\r\nno end",
    "unknown charset": HEAD + b"Content-Type: text/plain; charset=x-klingon\r\n\r\nQapla\xff\r\n",
    "wrong charset": HEAD + b"Content-Type: text/plain; charset=utf-8\r\n\r\ncaf\xe9 cr\xe8me\r\n",
    "bad base64": HEAD
    + b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
    + b"Content-Disposition: attachment; filename=x.pdf\r\n\r\n!!!not base64%%%\r\n",
    "bad quoted-printable": HEAD
    + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n",
    "huge header": HEAD + b"X-Huge: " + b"a" * 2_000_000 + b"\r\n\r\nbody\r\n",
    "a thousand recipients": b"From: maria@acme.example\r\nTo: "
    + b", ".join(f"r{i}@x{i}.example".encode() for i in range(3000))
    + b"\r\nSubject: many\r\n\r\nhi\r\n",
    "thousands of parts": _many_parts(5000),
    "deep nesting": _nested(2000),
    "8-bit headers": b"From: Mar\xeda <maria@acme.example>\r\nTo: alice@tidings.example\r\n"
    + b"Subject: \xc3\xa9t\xc3\xa9 \xff\xfe\r\n\r\nbody\r\n",
    "8-bit message-id": HEAD + b"Message-ID: <caf\xe9\x00@x.example>\r\n\r\nbody\r\n",
    "bad encoded word": HEAD.replace(b"Subject: broken", b"Subject: =?utf-8?B?!!!?=")
    + b"\r\nbody\r\n",
    "garbage address": b'From: <<<@@@>>>\r\nTo: ;;;,,,"\r\nSubject: x\r\n\r\nbody\r\n',
    "no headers": b"\r\n\r\njust a body\r\n",
    "null bytes": HEAD + b"\r\nbody\x00with\x00nulls\r\n",
    "no message-id": email(message_id=""),
    "binary junk": bytes(range(256)) * 40,
    "bad date": HEAD + b"Date: the day after tomorrow\r\n\r\nbody\r\n",
    "broken calendar": email(calendar="BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:garbage\n"),
    "message/rfc822 loop": HEAD
    + b"Content-Type: message/rfc822\r\n\r\n"
    + HEAD
    + b"Content-Type: message/rfc822\r\n\r\n"
    + HEAD
    + b"\r\ninner\r\n",
}
FINAL = {"processed", "unmatched", "rejected", "failed", "duplicate"}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_malformed_message_ends_with_a_status_and_a_reason(cast: Cast, name: str) -> None:
    inbound = ingest(CORPUS[name])
    assert inbound.status in FINAL, (name, inbound.status)
    assert inbound.reason, name
    # Broken input is the sender's problem, never a bug of ours.
    assert not inbound.reason.startswith("Internal error"), (name, inbound.reason)
    assert inbound.processed_at is not None


def test_the_message_nested_too_deeply_still_shows_its_outer_text(cast: Cast) -> None:
    inbound = ingest(_nested(60))
    assert inbound.status in FINAL and inbound.reason


def test_a_readable_message_with_a_broken_charset_still_reaches_the_timeline(cast: Cast) -> None:
    inbound = ingest(CORPUS["wrong charset"])
    assert inbound.status == InboundEmail.Status.PROCESSED
    assert inbound.activity is not None and "caf" in inbound.activity.body


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=4000))
def test_the_parser_reads_any_bytes_or_says_why_it_cannot(raw: bytes) -> None:
    peek_message_id(raw)
    try:
        parsed = parse_email(raw)
    except UnreadableEmail as error:
        assert str(error)
        return
    assert isinstance(parsed.subject, str) and isinstance(parsed.new_text, str)
    assert len(parsed.text) <= 10_000


header_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    subject=header_text,
    sender=header_text,
    body=st.text(max_size=2000),
    boundary=st.text(alphabet="abc-_=:'\"", max_size=10),
    charset=st.sampled_from(["utf-8", "latin-1", "x-unknown", "", "utf-7", "ascii"]),
)
def test_the_parser_survives_hostile_headers_and_structure(
    subject: str, sender: str, body: str, boundary: str, charset: str
) -> None:
    raw = (
        f"From: {sender}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset={charset}\r\n\r\n{body}\r\n"
    ).encode("utf-8", "surrogatepass")
    try:
        parsed = parse_email(raw)
    except UnreadableEmail:
        return
    assert "\x00" not in parsed.text


def test_parse_time_of_the_worst_messages_is_bounded(cast: Any) -> None:
    import time

    for name in ("huge header", "thousands of parts", "deep nesting", "a thousand recipients"):
        started = time.monotonic()
        with contextlib.suppress(UnreadableEmail):
            parse_email(CORPUS[name])
        assert time.monotonic() - started < 10, name
