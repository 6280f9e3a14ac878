"""Message-IDs that Tidings itself writes on mail it sends about an activity.

A reply quotes them in In-Reply-To/References, which is how it threads back onto the activity even
when the provider rewrote everything else. They are signed: an outsider who guesses an activity id
cannot thread mail onto an account they know nothing about.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from django.conf import settings

# The optional last part tells apart several messages about one activity (each reply to a
# customer on one request); only the activity id is signed.
_OURS = re.compile(r"^tidings\.a(\d{1,18})\.([0-9a-f]{20})(?:\.[0-9a-z]{1,32})?@(.+)$")


def _signature(activity_id: int) -> str:
    key = settings.SECRET_KEY.encode()
    message = f"tidings-message-id:{activity_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:20]


def message_id_for_activity(activity_id: int, *, nonce: str = "") -> str:
    """The Message-ID (with angle brackets) of mail we send about this activity; `nonce`
    (lowercase letters and digits) makes it unique among several mails about it."""
    domain = settings.TIDINGS_INBOUND_DOMAIN
    suffix = f".{nonce}" if nonce else ""
    return f"<tidings.a{activity_id}.{_signature(activity_id)}{suffix}@{domain}>"


def activity_id_from_message_id(message_id: str) -> int | None:
    """The activity one of our own Message-IDs names, or None (not ours, or forged)."""
    found = _OURS.match(message_id.strip("<>"))
    if found is None:
        return None
    activity_id = int(found.group(1))
    if not hmac.compare_digest(found.group(2), _signature(activity_id)):
        return None
    return activity_id
