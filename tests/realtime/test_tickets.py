"""Tickets (realtime/tickets.py): redeemed once, before they expire, by an active user only, with
the user loaded whole (the consumer reads its role and team for every access question)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from crm.models import User
from realtime.models import Ticket
from realtime.tickets import _hash, issue_ticket, redeem_ticket
from tests.conftest import Cast

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_ticket_names_its_user_once(cast: Cast) -> None:
    key, ttl = issue_ticket(user=cast.teammate)
    assert ttl > 0
    user = redeem_ticket(key)
    assert isinstance(user, User)
    assert (user.pk, user.username, user.role, user.team_id) == (
        cast.teammate.pk,
        cast.teammate.username,
        cast.teammate.role,
        cast.teammate.team_id,
    )
    assert user.is_authenticated and user.is_active
    assert Ticket.objects.get(key_hash=_hash(key)).used_at is not None
    assert redeem_ticket(key) is None


def test_an_expired_ticket_names_nobody_and_stays_unused(cast: Cast) -> None:
    key, _ = issue_ticket(user=cast.teammate)
    Ticket.objects.filter(key_hash=_hash(key)).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert redeem_ticket(key) is None
    assert Ticket.objects.get(key_hash=_hash(key)).used_at is None


def test_a_deactivated_users_ticket_names_nobody_and_is_spent(cast: Cast) -> None:
    key, _ = issue_ticket(user=cast.teammate)
    User.objects.filter(pk=cast.teammate.pk).update(is_active=False)
    assert redeem_ticket(key) is None
    # Spent all the same: reactivating the user does not bring an old ticket back.
    User.objects.filter(pk=cast.teammate.pk).update(is_active=True)
    assert redeem_ticket(key) is None


@pytest.mark.parametrize(
    "key", ["", "x" * 129, "not-a-ticket", "'; DROP TABLE realtime_ticket; --"]
)
def test_a_malformed_or_unknown_key_names_nobody(cast: Cast, key: str) -> None:
    real, _ = issue_ticket(user=cast.teammate)
    assert redeem_ticket(key) is None
    # The key is a parameter, never text of the statement: the real ticket is untouched.
    assert Ticket.objects.get(key_hash=_hash(real)).used_at is None


def test_of_concurrent_redemptions_exactly_one_wins(cast: Cast) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises its writers: no two redemptions ever overlap")
    key, _ = issue_ticket(user=cast.teammate)
    start = threading.Barrier(8)
    winners: list[object] = []

    def redeem() -> None:
        try:
            start.wait()
            winners.append(redeem_ticket(key))
        finally:
            connection.close()

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [w.pk for w in winners if w is not None] == [cast.teammate.pk]  # type: ignore[attr-defined]
    assert winners.count(None) == 7
