"""Emails: batched per person and account, skipped when read, threaded, one-click unsubscribe;
and the digest at the reader's local morning. Time is passed to the jobs, not slept through."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.test import Client
from django.utils import timezone

from crm import actions as crm_actions
from feed import actions as feed
from notifications import actions
from notifications.models import Notification
from notifications.queries import preferences_of
from tests.conftest import Cast, client_for, work_happenings

LATER = dt.timedelta(minutes=3)


def with_emails(cast: Cast) -> None:
    for user in (cast.owner, cast.teammate, cast.support, cast.manager, cast.outsider):
        user.email = f"{user.username}@tidings.example"
        user.save(update_fields=["email"])


def mention_alice(cast: Cast, text: str = "hi") -> None:
    feed.post_activity(author=cast.teammate, account=cast.account, body=f"@alice {text}")
    work_happenings()


def test_mentions_within_the_wait_go_in_one_email(cast: Cast, mailoutbox: Any) -> None:
    with_emails(cast)
    mention_alice(cast, "first")
    mention_alice(cast, "second")
    assert actions.flush_emails(timezone.now()) == 0  # still waiting for more
    assert actions.flush_emails(timezone.now() + LATER) == 1
    assert actions.flush_emails(timezone.now() + LATER) == 0  # a second run sends nothing
    [message] = mailoutbox
    assert message.to == ["alice@tidings.example"]
    assert message.subject == "[Tidings] Acme Logistics"
    assert "first" in message.body and "second" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "second" in html
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_what_was_read_meanwhile_is_not_emailed(cast: Cast, mailoutbox: Any) -> None:
    with_emails(cast)
    mention_alice(cast)
    actions.mark_read(user=cast.owner)
    assert actions.flush_emails(timezone.now() + LATER) == 0
    assert mailoutbox == []
    assert Notification.objects.get().emailed_at is not None  # done with, not retried


def test_emails_about_one_account_thread_together(cast: Cast, mailoutbox: Any) -> None:
    with_emails(cast)
    mention_alice(cast, "one")
    actions.flush_emails(timezone.now() + LATER)
    mention_alice(cast, "two")
    actions.flush_emails(timezone.now() + 2 * LATER)
    first, second = mailoutbox
    anchor = f"<account-{cast.account.pk}.u{cast.owner.pk}@tidings.localhost>"
    assert first.extra_headers["References"] == anchor
    assert second.extra_headers["In-Reply-To"] == first.extra_headers["Message-ID"]
    assert second.extra_headers["References"].split() == [anchor, first.extra_headers["Message-ID"]]
    assert first.extra_headers["Message-ID"] != second.extra_headers["Message-ID"]


def test_in_app_choice_sends_no_email(cast: Cast, mailoutbox: Any) -> None:
    with_emails(cast)
    actions.set_preferences(user=cast.owner, choices={"mention": "in_app"})
    mention_alice(cast)
    assert actions.flush_emails(timezone.now() + LATER) == 0
    assert Notification.objects.get().delivery == "in_app"


def test_unsubscribe_link_stops_that_kind_of_email(cast: Cast, mailoutbox: Any) -> None:
    with_emails(cast)
    mention_alice(cast)
    actions.flush_emails(timezone.now() + LATER)
    link = mailoutbox[0].extra_headers["List-Unsubscribe"].strip("<>")
    path = link.removeprefix("http://127.0.0.1:8000")
    anonymous = Client()
    assert anonymous.get(path).status_code == 200  # asking changes nothing (link scanners)
    assert preferences_of(cast.owner)["mention"] == "email"
    page = anonymous.post(path)  # one click, no login, no CSRF token: the signature is the key
    assert page.status_code == 200 and b"no more" in page.content
    assert preferences_of(cast.owner)["mention"] == "in_app"
    mention_alice(cast, "again")
    assert actions.flush_emails(timezone.now() + 2 * LATER) == 0


def test_forged_unsubscribe_link_is_refused(cast: Cast) -> None:
    token = actions.unsubscribe_token(cast.owner, "mention")
    response = Client().post(f"/notifications/unsubscribe/{token[:-2]}xx/")
    assert response.status_code == 404
    assert preferences_of(cast.owner)["mention"] == "email"


def test_email_is_not_sent_about_an_account_no_longer_visible(cast: Cast, mailoutbox: Any) -> None:
    with_emails(cast)
    crm_actions.grant_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    feed.post_activity(author=cast.owner, account=cast.account, body="@erin look")
    work_happenings()
    crm_actions.revoke_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    assert actions.flush_emails(timezone.now() + LATER) == 0
    assert mailoutbox == []


MORNING = dt.datetime(2026, 11, 23, 7, 30, tzinfo=dt.UTC)  # a Monday


def followed_news(cast: Cast) -> None:
    feed.follow_account(user=cast.support, account=cast.account)
    feed.post_activity(author=cast.owner, account=cast.account, body="we won the pilot")
    feed.post_activity(author=cast.support, account=cast.account, body="my own note")
    feed.post_activity(author=cast.outsider, account=cast.west_account, body="not followed")
    work_happenings()


def digests_to(mailoutbox: Any, address: str) -> list[Any]:
    return [m for m in mailoutbox if m.to == [address] and "digest" in m.subject]


def test_daily_digest_at_local_morning_once(cast: Cast, mailoutbox: Any) -> None:
    with_emails(cast)
    followed_news(cast)
    actions.send_digests(MORNING - dt.timedelta(hours=1))  # 06:30: too early
    assert digests_to(mailoutbox, "carol@tidings.example") == []
    actions.send_digests(MORNING)
    actions.send_digests(MORNING + dt.timedelta(hours=1))  # once a day
    [digest] = digests_to(mailoutbox, "carol@tidings.example")
    assert "we won the pilot" in digest.body
    assert "my own note" not in digest.body  # never one's own
    assert "Westwind" not in digest.body
    assert digest.extra_headers["List-Unsubscribe"]
    # alice owns the account, so carol's note is in hers.
    [hers] = digests_to(mailoutbox, "alice@tidings.example")
    assert "my own note" in hers.body and "we won the pilot" not in hers.body


def test_digest_follows_the_readers_time_zone(cast: Cast, mailoutbox: Any) -> None:
    with_emails(cast)
    actions.set_schedule(user=cast.support, timezone="America/New_York")
    followed_news(cast)
    actions.send_digests(MORNING)  # 02:30 in New York
    assert digests_to(mailoutbox, "carol@tidings.example") == []
    actions.send_digests(MORNING + dt.timedelta(hours=5))  # 07:30 there
    assert len(digests_to(mailoutbox, "carol@tidings.example")) == 1


def test_weekly_digest_waits_for_monday(cast: Cast, mailoutbox: Any) -> None:
    with_emails(cast)
    actions.set_schedule(user=cast.support, digest="weekly")
    followed_news(cast)
    actions.send_digests(MORNING + dt.timedelta(days=1))  # Tuesday
    assert digests_to(mailoutbox, "carol@tidings.example") == []
    actions.send_digests(MORNING + dt.timedelta(days=7))  # next Monday
    assert len(digests_to(mailoutbox, "carol@tidings.example")) == 1


def test_digest_leaves_out_accounts_no_longer_visible(cast: Cast, mailoutbox: Any) -> None:
    with_emails(cast)
    crm_actions.grant_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    feed.follow_account(user=cast.outsider, account=cast.account)
    feed.post_activity(author=cast.owner, account=cast.account, body="pricing")
    work_happenings()
    crm_actions.revoke_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    actions.send_digests(MORNING)
    assert digests_to(mailoutbox, "erin@tidings.example") == []


def test_a_moved_activity_is_told_where_it_is_now(cast: Cast, mailoutbox: Any) -> None:
    """Moved to an account the mentioned person cannot see: gone from their inbox and mail."""
    with_emails(cast)
    post = feed.post_activity(author=cast.owner, account=cast.account, body="@bob SECRET")
    work_happenings()
    feed.move_activity(actor=cast.admin, activity=post, to_account=cast.west_account)
    assert client_for(cast.teammate).get("/api/v1/notifications/").json()["results"] == []
    assert actions.flush_emails(timezone.now() + LATER) == 0
    assert mailoutbox == []
    crm_actions.grant_account_access(
        actor=cast.admin, account=cast.west_account, user=cast.teammate
    )
    [shown] = client_for(cast.teammate).get("/api/v1/notifications/").json()["results"]
    assert (shown["account"], shown["account_name"]) == (cast.west_account.pk, "Westwind Airlines")


def test_one_broken_email_does_not_hold_up_the_others(cast: Cast, mailoutbox: Any) -> None:
    with_emails(cast)
    crm_actions.update_account(actor=cast.admin, account=cast.account, name="Acme\nBcc: x@evil")
    mention_alice(cast)
    feed.post_activity(author=cast.outsider, account=cast.west_account, body="@erin self")
    feed.post_activity(author=cast.admin, account=cast.west_account, body="@erin look")
    work_happenings()
    actions.flush_emails(timezone.now() + LATER)
    subjects = sorted(message.subject for message in mailoutbox)
    assert subjects == ["[Tidings] Acme Bcc: x@evil", "[Tidings] Westwind Airlines"]
