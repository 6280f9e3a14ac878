"""A person's choices: how each kind reaches them, and when."""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction

from crm.models import User
from notifications.models import Delivery, Kind, Preference, Schedule
from notifications.rules import DEFAULT_DELIVERY

UNSUBSCRIBE_SALT = "notifications.unsubscribe"
DIGEST = "digest"  # the unsubscribe "kind" of the digest email itself


@transaction.atomic
def set_preferences(*, user: User, choices: dict[str, str]) -> dict[str, str]:
    """Set the delivery of each kind in `choices`; all are checked before anything changes.

    Choosing the default removes the row, so a later change of defaults reaches the person.
    """
    problems: dict[str, str] = {}
    for kind, delivery in choices.items():
        if kind not in Kind.values:
            problems[kind] = f"Unknown kind; use one of {', '.join(Kind.values)}."
        elif delivery not in Delivery.values:
            problems[kind] = (
                f"Unknown delivery {delivery!r}; use one of {', '.join(Delivery.values)}."
            )
    if problems:
        raise ValidationError(problems)
    for kind, delivery in choices.items():
        if delivery == DEFAULT_DELIVERY[kind]:
            Preference.objects.filter(user=user, kind=kind).delete()
        else:
            Preference.objects.update_or_create(
                user=user, kind=kind, defaults={"delivery": delivery}
            )
    return choices


@functools.cache
def known_time_zones() -> frozenset[str]:
    # A lookup by name would also open "Europe" (a folder) or over-long names: check membership.
    return frozenset(zoneinfo.available_timezones())


SCHEDULE_FIELDS = ("timezone", "digest", "digest_hour", "reminder_minutes")


def check_schedule(changes: dict[str, Any]) -> dict[str, Any]:
    problems: dict[str, str] = {}
    """Raises ValidationError naming each bad setting; changes nothing."""
    for name in set(changes) - set(SCHEDULE_FIELDS):
        problems[name] = "Not a schedule setting."
    if "timezone" in changes and str(changes["timezone"]) not in known_time_zones():
        problems["timezone"] = "Unknown time zone; use a name like Europe/Berlin."
    if "digest" in changes and changes["digest"] not in Schedule.Digest.values:
        problems["digest"] = f"Use one of {', '.join(Schedule.Digest.values)}."
    for name, low, high in (("digest_hour", 0, 23), ("reminder_minutes", 1, 24 * 60)):
        if name in changes:
            value = changes[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems[name] = f"A whole number from {low} to {high}."
    if problems:
        raise ValidationError(problems)
    return changes


@transaction.atomic
def set_schedule(*, user: User, **changes: Any) -> Schedule:
    """Change when `user` hears: time zone, digest frequency and hour, reminder lead time."""
    check_schedule(changes)
    schedule, _ = Schedule.objects.select_for_update().get_or_create(user=user)
    for name, value in changes.items():
        setattr(schedule, name, value)
    if changes:
        schedule.save(update_fields=list(changes))
    return schedule


@transaction.atomic
def update_preferences(*, user: User, kinds: dict[str, str], schedule: dict[str, Any]) -> None:
    """Both parts checked before either is written; all or nothing."""
    check_schedule(schedule)
    set_preferences(user=user, choices=kinds)
    set_schedule(user=user, **schedule)


def unsubscribe_token(user: User, kind: str) -> str:
    """The signed token of an email's one-click unsubscribe link for `kind` (or the digest)."""
    return signing.dumps({"u": user.pk, "k": kind}, salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe_token(token: str) -> tuple[User, str]:
    """Raises ValidationError for a token this service did not sign (or a vanished user)."""
    try:
        payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        user = User.objects.get(pk=int(payload["u"]), is_active=True)
        kind = str(payload["k"])
    except (signing.BadSignature, KeyError, TypeError, ValueError, User.DoesNotExist):
        raise ValidationError("This unsubscribe link is not valid.") from None
    if kind != DIGEST and kind not in Kind.values:
        raise ValidationError("This unsubscribe link is not valid.")
    return user, kind


@transaction.atomic
def unsubscribe(*, token: str) -> tuple[User, str]:
    """Stop the emails of one kind (they stay in the app), or the digest altogether."""
    user, kind = read_unsubscribe_token(token)
    if kind == DIGEST:
        set_schedule(user=user, digest=Schedule.Digest.OFF)
    else:
        current = Preference.objects.filter(user=user, kind=kind).first()
        delivery = current.delivery if current else DEFAULT_DELIVERY[kind]
        if delivery == Delivery.EMAIL:
            set_preferences(user=user, choices={kind: Delivery.IN_APP})
    return user, kind
