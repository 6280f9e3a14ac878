"""Following accounts."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from crm.models import Account, User
from crm.visibility import get_visible_account
from feed import events
from feed.models import Activity, Follow


@transaction.atomic
def follow_account(
    *,
    user: User,
    account: Account,
    kinds: list[str] | None = None,
    delivery: str | None = None,
) -> Follow:
    """Follow `account` (idempotent), seeing only `kinds` when given (None keeps the choice),
    told of it by `delivery` (blank: the user's general preference; None keeps the choice).

    Raises AccountNotFound when `user` cannot see it, ValidationError for an unknown kind.
    """
    get_visible_account(user, account.pk)
    if kinds is not None:
        unknown = set(kinds) - set(Activity.Kind.values)
        if unknown:
            raise ValidationError(f"Unknown activity kinds: {', '.join(sorted(unknown))}.")
    if delivery is not None and delivery not in ("", *Follow.Delivery.values):
        raise ValidationError(
            f"Unknown delivery {delivery!r}; use one of {', '.join(Follow.Delivery.values)}."
        )
    follow, created = Follow.objects.get_or_create(
        user=user,
        account=account,
        defaults={"kinds": sorted(set(kinds or [])), "delivery": delivery or ""},
    )
    changed = []
    if not created and kinds is not None and sorted(set(kinds)) != follow.kinds:
        follow.kinds = sorted(set(kinds))
        changed.append("kinds")
    if not created and delivery is not None and delivery != follow.delivery:
        follow.delivery = delivery
        changed.append("delivery")
    if changed:
        follow.save(update_fields=changed)
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
