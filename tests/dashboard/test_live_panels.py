"""The dashboard's tables follow the team's stream: what moves a number reaches `team:<id>`, and
the fragments the page fetches again (`/dashboard/panels/`) give the same numbers as a direct
count, scoped as the page is."""

from __future__ import annotations

import re
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from feed.actions import (
    create_task,
    delete_activity,
    post_activity,
    raise_request,
    set_task_done,
)
from feed.models import Activity
from realtime.models import Event
from tests.conftest import Cast, make_user


def _page(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _row(html: str, panel: str, username: str) -> list[str]:
    """The cells of `username`'s row in one panel of the fragment, as text."""
    section = re.search(rf'<section class="card" id="panel-{panel}">(.*?)</section>', html, re.S)
    assert section is not None, panel
    row = re.search(rf'<tr data-person="{username}">(.*?)</tr>', section.group(1), re.S)
    assert row is not None, (panel, username)
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)


def _direct_posts(user: Any) -> int:
    return Activity.objects.filter(author=user, kind="post", deleted_at__isnull=True).count()


def _team_events(cast: Cast, since: int) -> list[str]:
    return list(
        Event.objects.filter(id__gt=since, stream=f"team:{cast.east.pk}")
        .order_by("id")
        .values_list("type", flat=True)
    )


def _newest() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_panels_fragment_counts_agree_with_a_direct_count(cast: Cast) -> None:
    client = _page(cast.manager)
    before = client.get("/dashboard/panels/?period=week")
    assert before.status_code == 200 and before["Cache-Control"] == "no-store"
    assert _row(before.content.decode(), "activity", "alice")[1] == "0"
    post_activity(author=cast.owner, account=cast.account, body="Called the CFO")
    post = post_activity(author=cast.owner, account=cast.account, body="Sent the quote")
    html = client.get("/dashboard/panels/?period=week").content.decode()
    assert _row(html, "activity", "alice")[1] == str(_direct_posts(cast.owner)) == "2"
    delete_activity(actor=cast.owner, activity=post)
    html = client.get("/dashboard/panels/?period=week").content.decode()
    assert _row(html, "activity", "alice")[1] == str(_direct_posts(cast.owner)) == "1"
    # The four tables, never the ticker, and the page's filters carried in the link it fetches.
    assert {"panel-activity", "panel-work", "panel-pipeline", "panel-cold"} == set(
        re.findall(r'id="(panel-[a-z]+)"', html)
    )
    page = client.get("/dashboard/?period=month&region=North").content.decode()
    assert 'data-panels="/dashboard/panels/?period=month&amp;region=North"' in page


def test_panels_fragment_is_scoped_like_the_page(cast: Cast) -> None:
    post_activity(author=cast.outsider, account=cast.west_account, body="West news")
    manager = _page(cast.manager).get(f"/dashboard/panels/?team={cast.west.pk}").content.decode()
    assert 'data-person="erin"' not in manager and 'data-person="alice"' in manager
    rep = _page(cast.outsider).get("/dashboard/panels/").content.decode()
    assert 'data-person="erin"' in rep and 'data-person="alice"' not in rep
    anonymous = Client().get("/dashboard/panels/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    # A rep's dashboard has no stream, so it never asks for the fragment.
    assert "data-panels" not in _page(cast.owner).get("/dashboard/").content.decode()


def test_panels_fragment_costs_a_fixed_number_of_queries(cast: Cast) -> None:
    client = _page(cast.manager)
    client.get("/dashboard/panels/")
    with CaptureQueriesContext(connection) as few:
        client.get("/dashboard/panels/")
    for n in range(5):
        post_activity(author=cast.teammate, account=cast.account, body=f"note {n}")
        create_task(actor=cast.owner, account=cast.account, subject=f"task {n}")
    with CaptureQueriesContext(connection) as more:
        client.get("/dashboard/panels/")
    assert len(more.captured_queries) == len(few.captured_queries)


def test_what_moves_a_members_numbers_reaches_the_team_stream(cast: Cast) -> None:
    last = _newest()
    post = post_activity(author=cast.owner, account=cast.account, body="hello")
    delete_activity(actor=cast.owner, activity=post)
    assert _team_events(cast, last) == ["activity.created", "activity.deleted"]
    # A manager (no team) gives alice a task; she ticks it off: her open work and tasks done move,
    # so her team hears of both although the author is not a member.
    last = _newest()
    task = create_task(
        actor=cast.manager, account=cast.account, subject="Call", assignee=cast.owner
    )
    set_task_done(actor=cast.owner, task=task)
    assert _team_events(cast, last) == ["activity.created", "activity.updated"]
    # Support's own work on an East account, given to nobody in East, stays off the stream.
    last = _newest()
    raise_request(actor=cast.support, account=cast.account, subject="Carol's own")
    assert _team_events(cast, last) == []
    # And nothing of East's reaches West's stream.
    assert not Event.objects.filter(stream=f"team:{cast.west.pk}", id__gt=last).exists()


def test_names_in_the_charts_and_tables_are_escaped(cast: Cast) -> None:
    make_user("mallory", team=cast.east, first_name='<img src=x onerror="alert(1)">')
    html = _page(cast.manager).get("/dashboard/panels/").content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert html.count('class="chart"') == 2
