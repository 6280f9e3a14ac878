"""When each account last had customer-facing activity (`feed.AccountTouch`), kept in step by
the actions that record, hide or move activity, in their own transaction.

The dashboard's "going cold" reads it instead of the timeline; tests/dashboard/test_touches.py
checks it against the timeline after every kind of change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from django.db.models import Max

from feed.models import CUSTOMER_FACING_KINDS as CUSTOMER_FACING
from feed.models import AccountTouch, Activity


def is_customer_facing(kind: str) -> bool:
    return kind in CUSTOMER_FACING


def note_touch(*, account_id: int, at: dt.datetime) -> None:
    """`account_id` had customer-facing activity at `at`: its last touch is the later of the two.

    One UPDATE in the usual case; a backdated call leaves a later touch alone.
    """
    if AccountTouch.objects.filter(account_id=account_id, last_touch_at__lt=at).update(
        last_touch_at=at
    ):
        return
    try:
        with transaction.atomic():  # a savepoint: a concurrent first touch may win the insert
            AccountTouch.objects.get_or_create(
                account_id=account_id, defaults={"last_touch_at": at}
            )
    except IntegrityError:
        pass
    AccountTouch.objects.filter(account_id=account_id, last_touch_at__lt=at).update(
        last_touch_at=at
    )


def note_touches(latest: dict[int, dt.datetime]) -> None:
    """`note_touch` for many accounts (a batch of inbound email): one statement, the rows
    locked in account order.

    One UPDATE per account in the batch's own order deadlocked two drains whose batches share
    accounts in another order (20 deadlocks in one benchmark run, each stranding a batch until
    its lease ran out); sorted, every writer takes the rows in the same order."""
    if connection.vendor != "postgresql":
        for account_id in sorted(latest):
            note_touch(account_id=account_id, at=latest[account_id])
        return
    ids = sorted(latest)
    table = connection.ops.quote_name(AccountTouch._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS t (account_id, last_touch_at) "  # noqa: S608 - our table
            "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) ORDER BY 1 "
            "ON CONFLICT (account_id) DO UPDATE SET last_touch_at = EXCLUDED.last_touch_at "
            "WHERE t.last_touch_at < EXCLUDED.last_touch_at",
            [ids, [latest[pk] for pk in ids]],
        )


def refresh_touches(account_ids: Iterable[int]) -> None:
    """Read the last touch of these accounts again from their timelines: after activity was
    hidden or moved, when the latest touch may be gone."""
    ids = sorted(set(account_ids))
    if not ids:
        return
    latest = dict(
        Activity.objects.filter(
            account_id__in=ids, kind__in=CUSTOMER_FACING, deleted_at__isnull=True
        )
        .values("account_id")
        .annotate(last=Max("occurred_at"))
        .values_list("account_id", "last")
    )
    AccountTouch.objects.filter(account_id__in=[i for i in ids if i not in latest]).delete()
    for account_id, last in latest.items():
        AccountTouch.objects.update_or_create(
            account_id=account_id, defaults={"last_touch_at": last}
        )
