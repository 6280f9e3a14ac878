"""Opaque keyset cursors for timelines: (occurred_at, id) of the last row of a page."""

from __future__ import annotations

import base64
import binascii
import datetime as dt

from django.core.exceptions import ValidationError


def encode_cursor(occurred_at: dt.datetime, pk: int) -> str:
    raw = f"{occurred_at.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """Raises ValidationError for anything that is not a cursor this module made."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, pk = base64.urlsafe_b64decode(padded.encode("ascii")).decode().split("|")
        occurred_at = dt.datetime.fromisoformat(stamp)
        number = int(pk)
    except (ValueError, UnicodeError, binascii.Error):
        raise ValidationError("That is not a valid page cursor.") from None
    if occurred_at.tzinfo is None or number < 1:
        raise ValidationError("That is not a valid page cursor.")
    return occurred_at, number
