"""A calendar invite (the text/calendar part of an email) -> `Invite`, with icalendar.

No database here; `integrations.actions` matches the attendees and records the meeting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import icalendar


class UnreadableInvite(Exception):
    """The calendar part is not an invite we can read."""


@dataclass
class Invite:
    uid: str
    sequence: int
    summary: str
    description: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    is_cancelled: bool
    organizer: str = ""
    attendees: list[str] = field(default_factory=list)  # lower-cased addresses


def _address(value: object) -> str:
    text = str(value or "").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.strip().lower() if "@" in text else ""


def _when(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):  # an all-day event
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return None


def parse_invite(data: bytes) -> Invite:
    """The first event of the calendar; raises `UnreadableInvite`."""
    try:
        calendar = icalendar.Calendar.from_ical(data.decode("utf-8", "replace"))
        event = next(iter(calendar.walk("VEVENT")), None)
        if event is None:
            raise UnreadableInvite("The calendar part has no event.")
        starts_at = _when(event.decoded("DTSTART", None))
        ends_at = _when(event.decoded("DTEND", None))
    except UnreadableInvite:
        raise
    except Exception as error:
        raise UnreadableInvite(
            f"The calendar part is unreadable ({type(error).__name__})."
        ) from None
    if starts_at is None or not str(event.get("UID", "")).strip():
        raise UnreadableInvite("The invite has no start time or no UID.")
    attendees = event.get("ATTENDEE", [])
    if not isinstance(attendees, list):
        attendees = [attendees]
    method = str(calendar.get("METHOD", "")).upper()
    status = str(event.get("STATUS", "")).upper()
    try:
        sequence = int(str(event.get("SEQUENCE", 0)))
    except ValueError:
        sequence = 0
    return Invite(
        uid=str(event.get("UID")).strip()[:255],
        sequence=sequence,
        summary=" ".join(str(event.get("SUMMARY", "")).split())[:300] or "Meeting",
        description=str(event.get("DESCRIPTION", ""))[:10_000],
        starts_at=starts_at,
        ends_at=ends_at if ends_at and ends_at >= starts_at else None,
        is_cancelled=method == "CANCEL" or status == "CANCELLED",
        organizer=_address(event.get("ORGANIZER")),
        attendees=[a for a in (_address(x) for x in attendees[:500]) if a],
    )
