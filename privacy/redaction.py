"""Who is being erased, and how their personal data is found and replaced in text, JSON and bytes.

One pattern does both jobs: the database filters rows with it (`~*` on PostgreSQL, Django's
REGEXP function on SQLite) and Python replaces inside the rows found. So it is written in the
syntax both share: a leading `(?i)`, literal characters escaped with a backslash, `\\s+` between
the words of a name and a plain bracket class between the digits of a phone number.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Phone numbers are written with spaces, dots, dashes, slashes or brackets between digits.
_PHONE_GAP = "[ .()/-]*"
# Shorter numbers (an extension, "42") would match amounts and ids all over the database.
MIN_PHONE_DIGITS = 6
# A first or last name alone is only replaced inside the person's own activities, and only when
# it is long enough to be a name rather than a syllable of other words.
MIN_WORD_LETTERS = 2


def _literal(text: str) -> str:
    """`text` as a pattern that PostgreSQL's regular expressions and Python's `re` both read
    literally (a backslash before any other character than a letter or digit is literal in both)."""
    return "".join(c if c.isalnum() else "\\" + c for c in text)


def _name_pattern(name: str) -> str:
    return r"\s+".join(_literal(word) for word in name.split())


def _phone_pattern(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return _PHONE_GAP.join(digits) if len(digits) >= MIN_PHONE_DIGITS else ""


@dataclass(frozen=True)
class Person:
    """The personal data of one contact or lead, and what replaces it.

    `names` are whole names ("Maria Garcia"): replaced wherever they appear. `words` (a first
    or last name alone) are replaced only in text that is about the person (`Redactor.about`).
    """

    kind: str  # "contact" or "lead"
    pk: int
    names: tuple[str, ...]
    addresses: tuple[str, ...]
    phones: tuple[str, ...] = ()
    words: tuple[str, ...] = field(default=())

    @property
    def placeholder(self) -> str:
        return f"[erased {self.kind} {self.pk}]"

    @property
    def placeholder_address(self) -> str:
        # Still an address, so that address fields (to/cc lists, the participants column, email
        # columns) keep their shape; `.invalid` never routes (RFC 2606).
        return f"erased-{self.kind}-{self.pk}@erased.invalid"

    @property
    def address_pattern(self) -> str:
        """The person's addresses alone ("" when they have none), without the `(?i)`."""
        return "|".join(_literal(a) for a in self.addresses)

    @property
    def pattern(self) -> str:
        """What the database looks for: every name, address and phone number of the person."""
        return "(?i)" + "|".join(f"(?:{p})" for p in self._patterns())

    def _patterns(self) -> list[str]:
        patterns = [_literal(a) for a in self.addresses]
        patterns += [_name_pattern(n) for n in self.names if n.strip()]
        patterns += [p for p in (_phone_pattern(n) for n in self.phones) if p]
        return patterns or [_literal(self.placeholder)]


def person_named(
    *,
    kind: str,
    pk: int,
    first_name: str,
    last_name: str,
    addresses: Iterable[str],
    phones: Iterable[str],
) -> Person:
    first, last = first_name.strip(), last_name.strip()
    names = {f"{first} {last}".strip(), f"{last}, {first}" if first and last else ""}
    # As HTML pages and emails escape them ("O&#x27;Brien"), and as JSON stored as text does
    # (SQLite keeps "In\u00e9s"), so that the database's search sees those copies too.
    names |= {html.escape(n) for n in names} | {json.dumps(n)[1:-1] for n in names}
    words = {w for w in (first, last) if len(w) >= MIN_WORD_LETTERS}
    return Person(
        kind=kind,
        pk=pk,
        # Longest first, so that "Maria Garcia" goes before a shorter name inside it.
        names=tuple(sorted((n for n in names if n), key=len, reverse=True)),
        addresses=tuple(sorted({a.strip().lower() for a in addresses if a.strip()})),
        phones=tuple(p for p in phones if p.strip()),
        words=tuple(sorted(words, key=len, reverse=True)),
    )


class Redactor:
    """Replaces a person's data in strings, JSON values and raw bytes."""

    def __init__(self, person: Person, *, about: bool = False) -> None:
        """`about`: the text is about the person (their email, their meeting), so a first or
        last name alone is theirs too."""
        self.person = person
        self._addresses = re.compile(
            "(?i)" + "|".join(_literal(a) for a in person.addresses) if person.addresses else "$^"
        )
        others = [_name_pattern(n) for n in person.names]
        others += [p for p in (_phone_pattern(n) for n in person.phones) if p]
        if about:
            others += [rf"\b{_literal(w)}\b" for w in person.words]
        self._others = re.compile("(?i)" + "|".join(others) if others else "$^")
        self._bytes = re.compile(person.pattern.encode("utf-8"))

    def text(self, value: str) -> str:
        value = self._addresses.sub(self.person.placeholder_address, value)
        return self._others.sub(self.person.placeholder, value)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if isinstance(value, dict):
            return {key: self.json(item) for key, item in value.items()}
        return value

    def raw(self, value: bytes) -> bytes:
        """Byte-wise, for what is not text (ASCII addresses and names; what a message encodes
        in base64 or quoted-printable is out of its reach, which is why stored messages are
        replaced by a stub instead)."""
        return self._bytes.sub(self.person.placeholder.encode(), value)

    def matches(self, value: Any) -> bool:
        return self.json(value) != value
