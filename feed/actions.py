"""The write path for the feed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm.models import Account, User
from crm.visibility import get_visible_account
from feed import events
from feed.models import Activity, Follow
from feed.serializers import POST_MAX_CHARS


def _clean_text(body: str) -> str:
    # Browsers send form text with CRLF line ends, API clients with LF: store one kind.
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ValidationError("Write something first: the message is empty.")
    if "\x00" in text:
        raise ValidationError("The message contains a null character.")
    if len(text) > POST_MAX_CHARS:
        raise ValidationError(f"Messages are limited to {POST_MAX_CHARS} characters.")
    return text


@transaction.atomic
def log_activity(
    *,
    actor: User | None,
    account: Account,
    kind: str,
    body: str = "",
    subject: str = "",
    details: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
    parent: Activity | None = None,
) -> Activity:
    """Record one entry of history on `account` and announce it on the account's stream.

    `actor` None is the system itself (imports, integrations); a person must be able to see the
    account, else `AccountNotFound` is raised.
    """
    if actor is not None:
        get_visible_account(actor, account.pk)
    if kind not in Activity.Kind.values:
        raise ValidationError(f"Unknown activity kind {kind!r}.")
    if parent is not None and parent.account_id != account.pk:
        raise ValidationError("A reply must be on the same account as its thread.")
    activity = Activity.objects.create(
        account=account,
        kind=kind,
        author=actor,
        subject=subject,
        body=body,
        details=details or {},
        occurred_at=occurred_at or timezone.now(),
        parent=parent,
    )
    events.activity_created(activity)
    return activity


def post_activity(*, author: User, account: Account, body: str) -> Activity:
    """A post by `author` on `account`'s timeline."""
    return log_activity(
        actor=author, account=account, kind=Activity.Kind.POST, body=_clean_text(body)
    )


@transaction.atomic
def follow_account(*, user: User, account: Account) -> Follow:
    """Follow `account` (idempotent). Raises AccountNotFound when `user` cannot see it."""
    get_visible_account(user, account.pk)
    follow, created = Follow.objects.get_or_create(user=user, account=account)
    if created:
        events.follow_changed(user_id=user.pk, account_id=account.pk, is_following=True)
    return follow


@transaction.atomic
def unfollow_account(*, user: User, account: Account) -> None:
    """Stop following `account` explicitly (idempotent).

    Owners and account-team members keep following through their role.
    """
    get_visible_account(user, account.pk)
    deleted, _ = Follow.objects.filter(user=user, account=account).delete()
    if deleted:
        events.follow_changed(user_id=user.pk, account_id=account.pk, is_following=False)
