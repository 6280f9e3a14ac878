"""@username mentions: who is named, and who of them cannot see the account."""

from __future__ import annotations

import re
from typing import Any

from crm.models import Account, User
from crm.visibility import people_who_can_see

MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9_.+-]{1,150})")


def mentioned_usernames(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for match in MENTION.finditer(text):
        seen.setdefault(match.group(1).rstrip(".").lower(), None)
    return list(seen)


def mention_warnings(text: str, account: Account) -> list[dict[str, Any]]:
    """One warning per mentioned, existing person who cannot see `account` (and is not told)."""
    names = mentioned_usernames(text)
    if not names:
        return []
    warnings = []
    insiders = set(people_who_can_see(account).values_list("pk", flat=True))
    people = list(User.objects.filter(username__in=names, is_active=True).order_by("username"))
    known = {person.username.lower() for person in people}
    for name in names:
        if name not in known:
            warnings.append(
                {
                    "code": "mention_unknown",
                    "username": name,
                    "detail": f"Nobody here is called @{name}; nobody was notified.",
                }
            )
    for user in people:
        if user.pk not in insiders:
            warnings.append(
                {
                    "code": "mention_cannot_see",
                    "username": user.username,
                    "detail": f"@{user.username} cannot see this account and will not be notified.",
                }
            )
    return warnings
