"""Reads: the facts a happening's rules need, a person's inbox, preferences and schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from crm.models import User
from crm.visibility import people_who_can_see_each, visible_accounts
from feed.mentions import mentioned_usernames
from feed.models import Activity, Attendee, Follow, ThreadSubscription
from feed.queries import accounts_followers
from notifications import rules
from notifications.models import Notification, Preference, Schedule

INBOX_PAGE = 30


class Asked(NamedTuple):
    """One happening as the rules are asked about it. `assignee_id` is who had it when it
    happened, not who has it now."""

    what: str
    activity: Activity
    actor_id: int | None
    assignee_id: int | None


def facts_for(
    *, what: str, activity: Activity, actor_id: int | None, assignee_id: int | None
) -> rules.Facts:
    """Everything the rules ask about `activity`, in a handful of queries whatever the audience."""
    return facts_for_each([Asked(what, activity, actor_id, assignee_id)])[0]


def facts_for_each(asked: list[Asked]) -> list[rules.Facts]:
    """`facts_for` of many happenings in the same handful of queries as one (mentioned people,
    thread subscriptions, followers, visibility): a batch of inbound email makes ~50 at once,
    and asking per happening was 16 statements and 10-18 ms each (docs/benchmarks-inbound.md).
    Each activity's `parent` should be loaded with it."""
    if not asked:
        return []
    names = [mentioned_usernames(f"{a.activity.subject}\n{a.activity.body}") for a in asked]
    wanted = {name for some in names for name in some}
    people: dict[str, int] = {}
    if wanted:
        active = User.objects.filter(username__in=wanted, is_active=True)
        people = dict(active.values_list("username", "pk"))
    roots = [a.activity.parent if a.activity.parent is not None else a.activity for a in asked]
    choices: dict[int, list[tuple[int, bool]]] = {root.pk: [] for root in roots}
    subscriptions = ThreadSubscription.objects.filter(thread_id__in=list(choices))
    for thread_id, user_id, is_muted in subscriptions.values_list(
        "thread_id", "user_id", "is_muted"
    ):
        choices[thread_id].append((user_id, is_muted))
    account_ids = {a.activity.account_id for a in asked}
    followers = accounts_followers(account_ids)
    gathered = []
    for item, root, some in zip(asked, roots, names, strict=True):
        activity = item.activity
        mentioned = {people[name] for name in some if name in people}
        thread_author = root.author_id if activity.parent_id else None
        candidates = mentioned | set(followers[activity.account_id])
        candidates |= {user for user, _ in choices[root.pk]}
        candidates |= {pk for pk in (activity.author_id, item.assignee_id, thread_author) if pk}
        gathered.append((mentioned, thread_author, candidates))
    everyone = {user for _, _, candidates in gathered for user in candidates}
    seers = people_who_can_see_each(account_ids, everyone)
    facts = []
    for item, root, (mentioned, thread_author, candidates) in zip(
        asked, roots, gathered, strict=True
    ):
        activity = item.activity
        thread = choices[root.pk]
        facts.append(
            rules.Facts(
                what=item.what,
                kind=activity.kind,
                actor=item.actor_id,
                can_see=frozenset(seers[activity.account_id] & candidates),
                author=activity.author_id,
                assignee=item.assignee_id,
                mentioned=frozenset(mentioned),
                thread_author=thread_author,
                thread_followers=frozenset(user for user, is_muted in thread if not is_muted),
                thread_muters=frozenset(user for user, is_muted in thread if is_muted),
                account_followers=followers[activity.account_id],
            )
        )
    return facts


def follow_deliveries(account_id: int, user_ids: set[int]) -> dict[int, str]:
    return follow_deliveries_each({account_id}, user_ids).get(account_id, {})


def follow_deliveries_each(account_ids: set[int], user_ids: set[int]) -> dict[int, dict[int, str]]:
    """Account id -> user -> the delivery they chose for their follow of it (if they did)."""
    chosen: dict[int, dict[int, str]] = {}
    if not account_ids or not user_ids:
        return chosen
    rows = Follow.objects.filter(account_id__in=account_ids, user_id__in=user_ids)
    for account_id, user_id, delivery in rows.exclude(delivery="").values_list(
        "account_id", "user_id", "delivery"
    ):
        chosen.setdefault(account_id, {})[user_id] = delivery
    return chosen


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
