"""@username mentions: who is named, and who of them cannot see the account."""

from __future__ import annotations

import re
from typing import Any

from crm.models import Account, User
from crm.visibility import visible_accounts

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
    users = User.objects.filter(username__in=names, is_active=True)
    for user in users:
        if not visible_accounts(user).filter(pk=account.pk).exists():
            warnings.append(
                {
                    "code": "mention_cannot_see",
                    "username": user.username,
                    "detail": f"@{user.username} cannot see this account and will not be notified.",
                }
            )
    return warnings
