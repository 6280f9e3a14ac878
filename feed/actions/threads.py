"""Threads: replies to any activity, and following or muting one thread."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from crm.models import User
from crm.visibility import AccountNotFound, get_visible_account
from feed import events
from feed.actions.activities import clean_text, log_activity
from feed.models import Activity, ThreadSubscription


def thread_root(activity: Activity) -> Activity:
    return activity.parent if activity.parent_id is not None else activity  # type: ignore[return-value]


def is_internal_note(activity: Activity) -> bool:
    """A comment marked internal: a support team's note on a request, never sent outside."""
    return activity.kind == Activity.Kind.COMMENT and bool(activity.details.get("internal"))


@transaction.atomic
def add_comment(*, actor: User, parent: Activity, body: str, is_internal: bool = False) -> Activity:
    """A reply in the thread of `parent`. Replies to a reply join the same thread.

    `is_internal` marks it an internal note, which only a request's thread takes
    (ValidationError elsewhere): everyone who can see the account reads it (all users are
    employees), and nothing that goes to a customer ever carries it. Notes notify like any reply.
    The author follows the thread from then on (quiet auto-follow).
    """
    get_visible_account(actor, parent.account_id)
    if parent.deleted_at is not None:
        raise AccountNotFound()
    root = thread_root(parent)
    if root.deleted_at is not None:
        raise ValidationError("That thread was deleted.")
    if is_internal and root.kind != Activity.Kind.REQUEST:
        raise ValidationError(
            {"internal": "Internal notes go on support requests only; this thread is not one."}
        )
    comment = log_activity(
        actor=actor,
        account=root.account,
        kind=Activity.Kind.COMMENT,
        body=clean_text(body),
        parent=root,
        # In `details`, not a column: nothing filters or sorts on it, and every page reads
        # details already (the timeline's hand-written SQL included).
        details={"internal": True} if is_internal else None,
    )
    _, created = ThreadSubscription.objects.get_or_create(user=actor, thread=root)
    if created:
        _announce(actor, root, is_following=True)
    return comment


def _announce(user: User, root: Activity, *, is_following: bool) -> None:
    events.follow_changed(
        user_id=user.pk, account_id=root.account_id, is_following=is_following, thread_id=root.pk
    )


@transaction.atomic
def set_thread_subscription(*, user: User, thread: Activity, is_muted: bool) -> ThreadSubscription:
    """Follow (`is_muted` False) or mute a thread. Muting beats any account follow."""
    get_visible_account(user, thread.account_id)
    root = thread_root(thread)
    subscription, _ = ThreadSubscription.objects.update_or_create(
        user=user, thread=root, defaults={"is_muted": is_muted}
    )
    _announce(user, root, is_following=not is_muted)
    return subscription


@transaction.atomic
def clear_thread_subscription(*, user: User, thread: Activity) -> None:
    get_visible_account(user, thread.account_id)
    root = thread_root(thread)
    if ThreadSubscription.objects.filter(user=user, thread=root).delete()[0]:
        _announce(user, root, is_following=False)
