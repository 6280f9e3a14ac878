"""Raw RFC 5322 bytes -> `ParsedEmail`, with the standard library's email parser.

The parser is the standard library's (`BytesParser`, the same feed parser as the modern API), run
with the `compat32` policy: measured on the benchmark's mail, `policy.default` parses each header
through the header registry on every access and made parsing 4x slower (125 against 500 messages
a second) for nothing we use. Headers are decoded here with `email.header` and `email.utils`
instead, and bodies with their declared charset, so the result is the same text.

No database here. Mail in the wild is broken in every way a parser can imagine, so every read of
a header or part falls back instead of raising: a message that cannot be read at all raises
`UnreadableEmail` with a reason a person can act on, and nothing else escapes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import html
import re
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

import nh3
from mailparser_reply import EmailReplyParser
from mailparser_reply.parser import EmailMessage

# More parts than this are not looked at (a message of thousands of parts is an attack or a
# mistake; its first parts still show what it is).
MAX_PARTS = 500
MAX_ATTACHMENTS = 50
# Text kept on the activity; the raw message keeps everything.
MAX_TEXT_CHARS = 10_000
MAX_HTML_CHARS = 200_000
MAX_HEADER_CHARS = 2_000

# HTML that may reach a page: structure and emphasis, links, tables. No images (remote images
# are tracking pixels), no styles, no forms, nothing that runs.
ALLOWED_TAGS = {
    "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr", "i", "li",
    "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead",
    "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}

# Printable ASCII without the angle brackets: Message-IDs are ASCII (RFC 5322), and anything
# else (8-bit bytes read as surrogates) must never reach a unique index.
_MESSAGE_ID = re.compile(r"<([\x21-\x3b\x3d\x3f-\x7e]{1,250})>")
_reply_parser = EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl"])
REPLY_WINDOW = 3000


def _top_level_alternatives(pattern: str) -> list[str]:
    """`pattern` split at its top-level `|` (outside groups, classes and escapes)."""
    parts, depth, start, index, in_class = [], 0, 0, 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[index + 1 : index + 2] == "]":
                index += 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(pattern[start:index])
            start = index + 1
        index += 1
    parts.append(pattern[start:])
    return parts


# How each alternative of the library's header expression may begin: at a line start, or at the
# newline before one. Nothing else can start a match.
_LINE_ANCHORED_STARTS = ("^", "(^", "((?:(?:^|\\n|")


class _LineAnchoredFinder:
    """`findall` of a multi-line expression every alternative of which starts at a line start or
    at a newline, trying only those positions: the same list as `re.Pattern.findall`.

    The library scans its header expression (a dozen alternatives, six languages, case-blind)
    from every character of the text, ~0.7 ms of the worker's ~4 ms per message on the
    benchmark's mail; only one position in ~30 can start a match."""

    def __init__(self, regex: re.Pattern[str]) -> None:
        self.regex = regex
        self.pattern = regex.pattern

    def findall(self, text: str) -> list[Any]:
        found: list[Any] = []
        match, groups = self.regex.match, self.regex.groups
        pos, end = 0, len(text)
        while pos <= end:
            if pos and text[pos - 1] != "\n" and (pos == end or text[pos] != "\n"):
                pos = text.find("\n", pos)
                if pos < 0:
                    break
            hit = match(text, pos)
            if hit is None:
                pos += 1
                continue
            found.append(
                hit.group(groups) or ""
                if groups == 1
                else hit.groups("")
                if groups
                else hit.group()
            )
            # None of the alternatives matches the empty string (each needs a word or dashes).
            pos = hit.end() if hit.end() > pos else pos + 1
        return found


def _reply_expressions() -> dict[str, Any]:
    """The library's three expressions, built once (it builds them for every message)."""
    sample = EmailMessage(text="", languages=list(_reply_parser.languages))
    header: Any = sample.HEADER_REGEX
    anchored = all(
        part.startswith(_LINE_ANCHORED_STARTS) for part in _top_level_alternatives(header.pattern)
    )
    if anchored and header.flags & re.MULTILINE:
        header = _LineAnchoredFinder(header)
    return {
        "_header_regex": header,
        "_disclaimers_regex": sample.DISCLAIMERS_REGEX,
        "_signature_regex": sample.SIGNATURE_REGEX,
    }


_REPLY_EXPRESSIONS = _reply_expressions()


class UnreadableEmail(Exception):
    """The bytes are not a message we can read; `str(error)` says why (stored as the reason)."""


@dataclass(frozen=True)
class Address:
    name: str
    address: str  # lower-cased

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@dataclass
class ParsedAttachment:
    filename: str
    declared_type: str
    content: bytes


@dataclass
class ParsedEmail:
    message_id: str
    in_reply_to: list[str]
    references: list[str]
    subject: str
    sender: Address | None
    to: list[Address]
    cc: list[Address]
    delivered_to: list[Address]
    date: dt.datetime | None
    text: str
    new_text: str
    signature: str
    html: str
    attachments: list[ParsedAttachment] = field(default_factory=list)
    calendar: bytes | None = None
    auto_reason: str = ""
    authentication_results: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    @property
    def participants(self) -> list[Address]:
        """Sender first, then To, Cc and the envelope recipients, each address once."""
        seen: set[str] = set()
        found = []
        people = [self.sender] if self.sender else []
        for address in [*people, *self.to, *self.cc, *self.delivered_to]:
            if address.address not in seen:
                seen.add(address.address)
                found.append(address)
        return found

    @property
    def thread_ids(self) -> list[str]:
        """The ids this message answers, nearest first (In-Reply-To, then References backwards)."""
        ids = list(self.in_reply_to)
        ids += [i for i in reversed(self.references) if i not in ids]
        return ids


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def normalize_message_id(value: str) -> str:
    """The id inside the angle brackets ("" when there is none that looks like one)."""
    found = _MESSAGE_ID.search(value or "")
    if found is None:
        bare = (value or "").strip()
        is_usable = bare.isascii() and bare.isprintable() and " " not in bare
        return bare if is_usable and len(bare) <= 250 and not set("<>") & set(bare) else ""
    return found.group(1)


def peek_message_id(raw: bytes) -> str:
    """The Message-ID from the headers alone: cheap enough for the accepting request.

    Reads only the header block with the forgiving compat32 policy; any trouble means "no id"
    (the message is then keyed by its raw hash), never an error.
    """
    head, _, _ = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
    try:
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(head[:200_000])
        return normalize_message_id(str(headers.get("Message-ID", "")))
    except Exception:
        return ""


def parse_email(raw: bytes) -> ParsedEmail:
    """Everything the pipeline needs from a raw message; raises `UnreadableEmail`."""
    if not raw.strip():
        raise UnreadableEmail("The message is empty.")
    try:
        message = BytesParser(policy=policy.compat32).parsebytes(raw)
    except RecursionError:
        raise UnreadableEmail("The MIME structure is nested too deeply to read.") from None
    except Exception as error:
        raise UnreadableEmail(
            f"The message could not be parsed ({type(error).__name__})."
        ) from None
    if not message.keys():
        raise UnreadableEmail("The message has no headers.")
    try:
        return _read(message)
    except RecursionError:
        raise UnreadableEmail("The MIME structure is nested too deeply to read.") from None


def _read(message: Message) -> ParsedEmail:
    parts, defects = _walk(message)
    text, html_body, attachments, calendar = _bodies(parts)
    if not text and html_body:
        text = html_to_text(html_body)
    text = _clip(text.replace("\r\n", "\n").replace("\x00", ""), MAX_TEXT_CHARS)
    new_text, signature = split_reply(text)
    return ParsedEmail(
        message_id=normalize_message_id(header(message, "Message-ID")),
        in_reply_to=_ids(header(message, "In-Reply-To")),
        references=_ids(header(message, "References"))[-50:],
        subject=_clip(" ".join(header(message, "Subject").split()), 300),
        sender=next(iter(addresses(message, "From")), None),
        to=addresses(message, "To"),
        cc=addresses(message, "Cc"),
        delivered_to=addresses(message, "Delivered-To") + addresses(message, "X-Original-To"),
        date=_date(header(message, "Date")),
        text=text,
        new_text=new_text,
        signature=signature,
        html=sanitize_html(html_body) if html_body else "",
        attachments=attachments,
        calendar=calendar,
        auto_reason=auto_reason(message, parts),
        authentication_results=[_clip(v, 1000) for v in _all(message, "Authentication-Results")],
        defects=defects,
    )


def _walk(message: Message) -> tuple[list[Message], list[str]]:
    """The leaf parts, at most MAX_PARTS of them, and what was wrong with the structure."""
    defects = [type(d).__name__ for d in getattr(message, "defects", [])][:20]
    leaves: list[Message] = []
    stack: list[tuple[Message, int]] = [(message, 0)]
    visited = 0
    # An explicit stack instead of Message.walk(): walk() recurses, and deep nesting is one of
    # the ways a hostile message tries to crash a worker.
    while stack:
        part, depth = stack.pop()
        visited += 1
        if visited > MAX_PARTS:
            defects.append(f"more than {MAX_PARTS} parts; the rest were not read")
            break
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            if depth > 50:
                defects.append("nesting deeper than 50 levels; the inner parts were not read")
                continue
            stack.extend((c, depth + 1) for c in reversed(payload) if isinstance(c, Message))
        else:
            leaves.append(part)
    return leaves, defects


def _bodies(parts: list[Message]) -> tuple[str, str, list[ParsedAttachment], bytes | None]:
    text, html_body, calendar = "", "", None
    attachments: list[ParsedAttachment] = []
    for part in parts:
        content_type = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part)
        if content_type == "text/calendar" and calendar is None:
            calendar = _payload_bytes(part)
            continue
        if disposition != "attachment" and not filename:
            if content_type == "text/plain" and not text:
                text = part_text(part)
                continue
            if content_type == "text/html" and not html_body:
                html_body = part_text(part)
                continue
            if content_type.startswith(("text/", "multipart/", "message/")):
                continue
        if len(attachments) < MAX_ATTACHMENTS:
            attachments.append(
                ParsedAttachment(
                    filename=filename or "attachment",
                    declared_type=content_type,
                    content=_payload_bytes(part),
                )
            )
    return text, html_body, attachments, calendar


def _payload_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "replace") if isinstance(raw, str) else b""


def part_text(part: Message) -> str:
    """A text part as str: its declared charset, else UTF-8, else Latin-1 (never raises)."""
    data = _payload_bytes(part)
    charset = "utf-8"
    # A broken charset parameter means "guess", like a missing one.
    with contextlib.suppress(Exception):
        charset = part.get_content_charset() or "utf-8"
    for candidate in (charset, "utf-8"):
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode("latin-1")


def _filename(part: Message) -> str:
    try:
        name = _decode_raw(part.get_filename() or "")
    except Exception:
        name = ""
    # Only the last path segment, printable, short: it is shown and sent back in a header.
    name = re.split(r"[\\/]", str(name))[-1]
    name = "".join(ch for ch in _printable(name) if ch.isprintable() and ch not in '"\r\n')
    return name.strip()[:200]


def header(message: Message, name: str) -> str:
    """A header as text: encoded words decoded, 8-bit bytes read as UTF-8 where they are."""
    try:
        value = message.get(name)
    except Exception:
        value = None
    return _clip(_decode_raw(value), MAX_HEADER_CHARS) if value is not None else ""


def _all(message: Message, name: str) -> list[str]:
    try:
        return [str(v) for v in message.get_all(name) or []]
    except Exception:
        return []


def _decode_raw(value: Any) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return str(value)


def addresses(message: Message, name: str) -> list[Address]:
    found = []
    for display, address in getaddresses(_all(message, name)[:5]):
        display = _decode_raw(display) if "=?" in display else display
        address = _printable(address).strip().lower()
        if "@" in address and len(address) <= 254 and " " not in address:
            found.append(Address(name=_clip(display.strip(), 200), address=address))
        if len(found) >= 200:
            break
    return found


def _ids(value: str) -> list[str]:
    return _MESSAGE_ID.findall(value)


def _date(value: str) -> dt.datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def _clip(text: str, limit: int) -> str:
    text = _printable(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _printable(text: str) -> str:
    """`text` as valid Unicode without NUL: raw 8-bit bytes in headers come back from the parser
    as lone surrogates, which neither JSON nor PostgreSQL accept. Read as UTF-8 where they are
    UTF-8, replaced where not."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "")


def split_reply(text: str) -> tuple[str, str]:
    """The new text of a reply and its signature, without the quoted earlier messages.

    The library reads only the first REPLY_WINDOW characters: new text comes first, and its
    regular expressions cost time in proportion to the quoted history below (measured: 10 ms
    for a reply quoting 1,400 words). When no quote or signature starts within the window, the
    text is kept whole.
    """
    if not text.strip():
        return "", ""
    window = text[:REPLY_WINDOW]
    try:
        message = EmailMessage(
            text=window, languages=list(_reply_parser.languages), **_REPLY_EXPRESSIONS
        )
        reply = message.read().replies[0]
    except Exception:
        return text.strip(), ""
    new_text = (reply.body or "").strip()
    signature = (reply.signatures or "").strip()
    if len(text) > REPLY_WINDOW and new_text == window.strip():
        return text.strip(), signature
    return new_text or text.strip(), signature


def sanitize_html(markup: str) -> str:
    """The allow-listed subset of an email's HTML: safe to put on any page as it is."""
    return nh3.clean(
        markup[:MAX_HTML_CHARS].strip(),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


def html_to_text(markup: str) -> str:
    blocks = re.sub(r"(?i)<\s*(br|/p|/div|/tr|/li|/h\d)\b[^>]*>", "\n", markup[:MAX_HTML_CHARS])
    text = html.unescape(nh3.clean(blocks, tags=set()))
    return re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()


AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}


def auto_reason(message: Message, parts: list[Message]) -> str:
    """Why this message is machine-sent (an auto-reply or a bounce), or "" for a person's mail."""
    auto_submitted = header(message, "Auto-Submitted").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"auto-reply (Auto-Submitted: {auto_submitted[:40]})"
    precedence = header(message, "Precedence").strip().lower()
    if precedence in AUTO_PRECEDENCE:
        return f"auto-reply (Precedence: {precedence})"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response"):
        if header(message, name):
            return f"auto-reply ({name})"
    if message.get_content_type() == "multipart/report":
        return "bounce (delivery status report)"
    sender = header(message, "From").lower()
    if "mailer-daemon@" in sender or sender.startswith("postmaster@") or "<postmaster@" in sender:
        return "bounce (from the mail system)"
    return ""


def authentication_passes(results: list[str], authserv_id: str, from_domain: str) -> bool:
    """Whether a trusted Authentication-Results header vouches for the From domain.

    Only headers whose authserv-id is ours are read: a sender can write any header it likes, so
    one naming another server proves nothing. DMARC pass suffices; otherwise SPF or DKIM must
    pass for the From domain itself (aligned).
    """
    if not authserv_id or not from_domain:
        return False
    for value in results:
        head, _, rest = value.partition(";")
        if head.strip().split()[:1] != [authserv_id]:
            continue
        verdicts = rest.lower()
        if re.search(r"\bdmarc=pass\b", verdicts):
            return True
        for method, key in (("dkim", "header.d"), ("dkim", "header.i"), ("spf", "smtp.mailfrom")):
            for match in re.finditer(rf"\b{method}=pass\b[^;]*?\b{key}=([^\s;]+)", verdicts):
                if match.group(1).rpartition("@")[2].strip(".") == from_domain:
                    return True
    return False


def describe(parsed: ParsedEmail) -> dict[str, Any]:
    """The headers an email activity shows (its `details`), in the shape every email activity
    has: addresses as strings, the sender's display name beside."""
    return {
        "direction": "inbound",
        "from": parsed.sender.address if parsed.sender else "",
        "from_name": parsed.sender.name if parsed.sender else "",
        "to": [a.address for a in parsed.to],
        "cc": [a.address for a in parsed.cc],
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to[:1],
        "date": parsed.date.isoformat() if parsed.date else None,
    }
