"""The emails: one per person and account per batch, threaded per account, and the digest.

Every email has a plain-text and an HTML part, `Auto-Submitted` (so that auto-responders and our
own inbound intake never answer it), and a one-click unsubscribe (RFC 8058) for what it carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from crm.models import Account, User
from notifications.actions.preferences import DIGEST, unsubscribe_token
from notifications.models import Kind, Notification
from notifications.serializers import activity_url


def one_line(text: str) -> str:
    """Header text: line breaks in a name would make the header invalid (or inject another)."""
    return " ".join(text.split())


def absolute(path: str) -> str:
    return settings.TIDINGS_BASE_URL + path


def unsubscribe_url(user: User, kind: str) -> str:
    return absolute(reverse("notification-unsubscribe", args=[unsubscribe_token(user, kind)]))


def account_thread_id(user: User, account: Account) -> str:
    """The Message-ID every email about `account` to `user` refers to, so that mail clients
    keep them in one conversation."""
    return f"<account-{account.pk}.u{user.pk}@{settings.TIDINGS_EMAIL_DOMAIN}>"


def _items(user: User, notifications: Sequence[Notification]) -> list[dict[str, str]]:
    return [
        {
            "title": item.title,
            "text": item.activity.body[:500],
            "url": absolute(
                activity_url(item.account_id, item.activity_id, item.activity.parent_id)
            ),
            "kind": Kind(item.kind).label,
            "stop_url": unsubscribe_url(user, item.kind),
        }
        for item in notifications
    ]


def batch_email(
    user: User, account: Account, notifications: Sequence[Notification], previous: str | None
) -> EmailMultiAlternatives:
    """What arrived for `user` about `account` since the last batch, in one email."""
    first = notifications[0]
    unsubscribe = unsubscribe_url(user, first.kind)
    context = {
        "user": user,
        "account": account,
        "account_url": absolute(reverse("account-detail", args=[account.pk])),
        "items": _items(user, notifications),
        "settings_url": absolute(reverse("notification-settings")),
        "unsubscribe_url": unsubscribe,
        "unsubscribe_label": Kind(first.kind).label.lower(),
    }
    anchor = account_thread_id(user, account)
    references = f"{anchor} {previous}" if previous else anchor
    return _message(
        user,
        # The same subject for every email about the account: clients thread on it too.
        subject=f"[Tidings] {one_line(account.name)}",
        template="notifications/email/batch",
        context=context,
        headers={"In-Reply-To": previous or anchor, "References": references},
        unsubscribe=unsubscribe,
    )


def digest_email(
    user: User, groups: list[tuple[Account, list[Notification]]], period: str
) -> EmailMultiAlternatives:
    count = sum(len(items) for _, items in groups)
    unsubscribe = unsubscribe_url(user, DIGEST)
    context = {
        "user": user,
        "period": period,
        "count": count,
        "groups": [
            {
                "account": account,
                "account_url": absolute(reverse("account-detail", args=[account.pk])),
                "items": _items(user, items),
            }
            for account, items in groups
        ],
        "settings_url": absolute(reverse("notification-settings")),
        "unsubscribe_url": unsubscribe,
    }
    return _message(
        user,
        subject=f"[Tidings] Your {period} digest: {count} updates on {len(groups)} accounts",
        template="notifications/email/digest",
        context=context,
        headers={},
        unsubscribe=unsubscribe,
    )


def _message(
    user: User,
    *,
    subject: str,
    template: str,
    context: dict[str, object],
    headers: dict[str, str],
    unsubscribe: str,
) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{template}.txt", context),
        to=[user.email],
        headers={
            "Message-ID": make_msgid("tidings", domain=settings.TIDINGS_EMAIL_DOMAIN),
            "Auto-Submitted": "auto-generated",
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            **headers,
        },
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message
