"""Reads: the facts a happening's rules need, a person's inbox, preferences and schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from crm.models import User
from crm.visibility import people_who_can_see, visible_accounts
from feed.mentions import mentioned_usernames
from feed.models import Activity, Attendee, Follow, ThreadSubscription
from feed.queries import account_followers
from notifications import rules
from notifications.models import Notification, Preference, Schedule

INBOX_PAGE = 30


def facts_for(
    *, what: str, activity: Activity, actor_id: int | None, assignee_id: int | None
) -> rules.Facts:
    """Everything the rules ask about `activity`, in a handful of queries whatever the audience.

    `assignee_id` is who had it when it happened, not who has it now."""
    root = activity.parent if activity.parent is not None else activity
    names = mentioned_usernames(f"{activity.subject}\n{activity.body}")
    mentioned = set(
        User.objects.filter(username__in=names, is_active=True).values_list("pk", flat=True)
    )
    choices = list(
        ThreadSubscription.objects.filter(thread=root).values_list("user_id", "is_muted")
    )
    followers = account_followers(activity.account_id)
    thread_author = root.author_id if activity.parent_id else None
    candidates = mentioned | set(followers) | {user for user, _ in choices}
    candidates |= {pk for pk in (activity.author_id, assignee_id, thread_author) if pk}
    can_see = set(
        people_who_can_see(activity.account).filter(pk__in=candidates).values_list("pk", flat=True)
    )
    return rules.Facts(
        what=what,
        kind=activity.kind,
        actor=actor_id,
        can_see=frozenset(can_see),
        author=activity.author_id,
        assignee=assignee_id,
        mentioned=frozenset(mentioned),
        thread_author=thread_author,
        thread_followers=frozenset(user for user, is_muted in choices if not is_muted),
        thread_muters=frozenset(user for user, is_muted in choices if is_muted),
        account_followers=followers,
    )


def follow_deliveries(account_id: int, user_ids: set[int]) -> dict[int, str]:
    rows = Follow.objects.filter(account_id=account_id, user_id__in=user_ids).exclude(delivery="")
    return dict(rows.values_list("user_id", "delivery"))


def chosen_deliveries(user_ids: set[int]) -> dict[int, dict[str, str]]:
    """Each person's own choices per kind (kinds left at the default are missing)."""
    chosen: dict[int, dict[str, str]] = {pk: {} for pk in user_ids}
    for user_id, kind, delivery in Preference.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "kind", "delivery"
    ):
        chosen[user_id][kind] = delivery
    return chosen


def preferences_of(user: User) -> dict[str, str]:
    """Every kind with the delivery in force for `user` (their choice or the default)."""
    chosen = chosen_deliveries({user.pk})[user.pk]
    return {kind: rules.delivery_for(kind, chosen) for kind in rules.DEFAULT_DELIVERY}


def schedule_of(user: User) -> Schedule:
    """The person's schedule; an unsaved default one when they never chose."""
    return Schedule.objects.filter(user=user).first() or Schedule(user=user)


def meeting_attendees(meeting_ids: list[int]) -> dict[int, list[int]]:
    attendees: dict[int, list[int]] = {}
    rows = Attendee.objects.filter(activity_id__in=meeting_ids, user__isnull=False)
    for activity_id, user_id in rows.values_list("activity_id", "user_id"):
        attendees.setdefault(activity_id, []).append(user_id)
    return attendees


def _shown(user: Any) -> QuerySet[Notification]:
    """What the inbox shows: in-app and email notifications about accounts still visible."""
    return Notification.objects.filter(
        recipient_id=user.pk,
        delivery__in=["in_app", "email"],
        # Where the activity is now: a moved or merged one is shown by its current account.
        activity__account__in=visible_accounts(user),
        activity__deleted_at__isnull=True,
    )


@dataclass(frozen=True)
class InboxPage:
    results: list[Notification]
    next: str | None
    unread: int


def inbox(user: Any, *, before: str | None = None, unread_only: bool = False) -> InboxPage:
    """Newest first, by keyset on the id (`before` is the `next` of the previous page).
    Three queries: visibility is a subquery, the page, and the unread count."""
    queryset = _shown(user).select_related("actor", "activity__account")
    if before:
        if not before.isdecimal() or int(before) < 1:
            raise ValidationError("That is not a valid page cursor.")
        queryset = queryset.filter(pk__lt=int(before))
    if unread_only:
        queryset = queryset.filter(read_at__isnull=True)
    rows = list(queryset.order_by("-id")[: INBOX_PAGE + 1])
    more = len(rows) > INBOX_PAGE
    rows = rows[:INBOX_PAGE]
    return InboxPage(
        results=rows,
        next=str(rows[-1].pk) if more and rows else None,
        unread=unread_count(user),
    )


def unread_count(user: Any) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return _shown(user).filter(read_at__isnull=True).count()
