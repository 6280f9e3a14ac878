"""The inbox through the API and the pages; bad input refused with nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from feed import actions as feed
from notifications.models import Notification, Preference, Schedule
from realtime.models import Event
from tests.conftest import Cast, client_for, work_happenings


def mentions(cast: Cast, count: int = 2) -> list[int]:
    for number in range(count):
        feed.post_activity(author=cast.teammate, account=cast.account, body=f"@alice {number}")
    work_happenings()
    return list(Notification.objects.filter(recipient=cast.owner).values_list("pk", flat=True))


def test_inbox_lists_ones_own_newest_first(cast: Cast) -> None:
    ids = mentions(cast)
    answer = client_for(cast.owner).get("/api/v1/notifications/").json()
    assert [item["id"] for item in answer["results"]] == sorted(ids, reverse=True)
    assert answer["unread"] == 2 and answer["next"] is None
    first = answer["results"][0]
    assert first["kind"] == "mention" and first["account_name"] == "Acme Logistics"
    assert first["actor"]["username"] == "bob" and first["is_read"] is False
    assert first["url"].startswith(f"/accounts/{cast.account.pk}/#activity-")
    assert client_for(cast.teammate).get("/api/v1/notifications/").json()["results"] == []


def test_inbox_pages_by_cursor_in_a_fixed_number_of_queries(
    cast: Cast, django_assert_max_num_queries: Any
) -> None:
    mentions(cast, 35)
    client = client_for(cast.owner)
    with django_assert_max_num_queries(6):
        first = client.get("/api/v1/notifications/").json()
    assert len(first["results"]) == 30 and first["next"]
    second = client.get(f"/api/v1/notifications/?before={first['next']}").json()
    assert len(second["results"]) == 5 and second["next"] is None
    unread = client.get("/api/v1/notifications/?unread=1").json()
    assert len(unread["results"]) == 30


def test_reading_some_then_all_pushes_to_every_tab(cast: Cast) -> None:
    first, _ = mentions(cast)
    client = client_for(cast.owner)
    answer = client.post("/api/v1/notifications/read/", {"ids": [first]}, format="json").json()
    assert answer == {"marked": 1, "unread": 1}
    answer = client.post("/api/v1/notifications/read/", {"all": True}, format="json").json()
    assert answer == {"marked": 1, "unread": 0}
    reads = Event.objects.filter(type="notification.read").order_by("id")
    assert [event.stream for event in reads] == [f"notifications:{cast.owner.pk}"] * 2
    assert [event.data for event in reads] == [
        {"ids": [first], "all": False, "unread": 1},
        {"ids": None, "all": True, "unread": 0},
    ]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": []},
        {"ids": "1"},
        {"ids": [1.5]},
        {"ids": [True]},
        {"all": "yes"},
        {"ids": [1], "all": True},
        ["all"],
    ],
)
def test_malformed_read_requests_are_refused(cast: Cast, body: Any) -> None:
    mentions(cast, 1)
    answer = client_for(cast.owner).post("/api/v1/notifications/read/", body, format="json")
    assert answer.status_code == 400
    assert Notification.objects.filter(read_at__isnull=False).count() == 0


def test_marking_someone_elses_notification_read_changes_nothing(cast: Cast) -> None:
    [theirs] = mentions(cast, 1)
    client = client_for(cast.teammate)
    answer = client.post("/api/v1/notifications/read/", {"ids": [theirs]}, format="json")
    assert answer.status_code == 400
    answer = client.post("/api/v1/notifications/read/", {"ids": [theirs, 99999]}, format="json")
    assert answer.status_code == 400
    assert Notification.objects.get().read_at is None
    assert Client().post("/api/v1/notifications/read/", {"all": True}).status_code == 401


def test_preferences_read_and_change(cast: Cast) -> None:
    client = client_for(cast.owner)
    current = client.get("/api/v1/notifications/preferences/").json()
    assert current["kinds"]["mention"] == "email"
    assert current["kinds"]["followed_activity"] == "digest"
    assert current["schedule"] == {
        "timezone": "UTC",
        "digest": "daily",
        "digest_hour": 7,
        "reminder_minutes": 15,
    }
    change = {"kinds": {"mention": "in_app"}, "schedule": {"timezone": "Europe/Berlin"}}
    answer = client.patch("/api/v1/notifications/preferences/", change, format="json").json()
    assert answer["kinds"]["mention"] == "in_app"
    assert answer["schedule"]["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    "body",
    [
        {"kinds": {"gossip": "email"}},
        {"kinds": {"mention": "pigeon"}},
        {"kinds": {"mention": 1}},
        {"kinds": ["mention"]},
        {"schedule": {"timezone": "Mars/Olympus"}},
        {"schedule": {"timezone": "Europe"}},  # a folder of the zone database, not a zone
        {"schedule": {"timezone": "x" * 300}},
        {"schedule": {"timezone": "../../etc/passwd"}},
        {"schedule": {"digest_hour": 24}},
        {"schedule": {"digest_hour": "7"}},
        {"schedule": {"reminder_minutes": 0}},
        {"schedule": {"digest": "hourly"}},
        {"schedule": {"is_staff": True}},
        {"schedule": []},
        {"owner": 1},
        # One bad part spoils the whole change: the good part is not written either.
        {"kinds": {"mention": "off"}, "schedule": {"digest_hour": -1}},
        {"kinds": {"mention": "off", "gossip": "off"}},
    ],
)
def test_malformed_preference_updates_change_nothing(cast: Cast, body: Any) -> None:
    answer = client_for(cast.owner).patch("/api/v1/notifications/preferences/", body, format="json")
    assert answer.status_code == 400, answer.content
    assert not Preference.objects.exists()
    assert not Schedule.objects.exists()


def test_header_badge_counts_unread_on_every_page(cast: Cast) -> None:
    mentions(cast, 2)
    client = Client()
    client.force_login(cast.owner)
    page = client.get("/").content.decode()
    assert 'id="unread-badge" data-unread="2"' in page
    client.force_login(cast.teammate)
    assert 'data-unread="0"' in client.get("/").content.decode()


def test_inbox_page_opens_and_marks_read(cast: Cast) -> None:
    first, _ = mentions(cast)
    client = Client()
    client.force_login(cast.owner)
    page = client.get("/notifications/").content.decode()
    assert "Bob mentioned you on Acme Logistics" in page
    opened = client.post(f"/notifications/{first}/open/")
    assert opened.status_code == 302
    assert opened["Location"].startswith(f"/accounts/{cast.account.pk}/#activity-")
    assert Notification.objects.get(pk=first).read_at is not None
    assert client.post("/notifications/read/").status_code == 302
    assert not Notification.objects.filter(read_at__isnull=True).exists()


def test_settings_page_saves_choices_and_reports_errors(cast: Cast) -> None:
    client = Client()
    client.force_login(cast.owner)
    assert b"What reaches you" in client.get("/notifications/settings/").content
    form = {
        "kind-mention": "off",
        "timezone": "Asia/Tokyo",
        "digest": "weekly",
        "digest_hour": "8",
        "reminder_minutes": "30",
    }
    assert client.post("/notifications/settings/", form).status_code == 302
    schedule = Schedule.objects.get(user=cast.owner)
    assert (schedule.timezone, schedule.digest, schedule.digest_hour) == ("Asia/Tokyo", "weekly", 8)
    assert Preference.objects.get(user=cast.owner).delivery == "off"
    bad = client.post("/notifications/settings/", {**form, "timezone": "Nowhere/Land"})
    assert bad.status_code == 200 and b"Unknown time zone" in bad.content
    assert Schedule.objects.get(user=cast.owner).timezone == "Asia/Tokyo"
