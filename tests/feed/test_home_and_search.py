"""The home feed, search and mention suggestions, each through the visibility policy."""

from __future__ import annotations

from crm import actions as crm_actions
from feed.actions import (
    add_comment,
    follow_account,
    log_call,
    post_activity,
    set_thread_subscription,
)
from tests.conftest import Cast, client_for


def home(user: object) -> list[str]:
    return [a["body"] for a in client_for(user).get("/api/v1/feed/").json()["results"]]  # type: ignore[arg-type]


def test_home_has_followed_accounts_newest_first(cast: Cast) -> None:
    post_activity(author=cast.owner, account=cast.account, body="first")
    post_activity(author=cast.teammate, account=cast.account, body="second")
    post_activity(author=cast.outsider, account=cast.west_account, body="elsewhere")
    assert home(cast.owner) == ["second", "first"]
    assert home(cast.teammate) == []  # bob follows nothing yet
    follow_account(user=cast.teammate, account=cast.account)
    assert home(cast.teammate) == ["second", "first"]


def test_home_respects_kind_preferences(cast: Cast) -> None:
    client = client_for(cast.teammate)
    client.put(f"/api/v1/accounts/{cast.account.pk}/follow/", {"kinds": ["call"]}, format="json")
    post_activity(author=cast.owner, account=cast.account, body="a post")
    log_call(actor=cast.owner, account=cast.account, body="a call")
    assert home(cast.teammate) == ["a call"]


def test_unknown_kind_in_preferences_is_a_400(cast: Cast) -> None:
    response = client_for(cast.teammate).put(
        f"/api/v1/accounts/{cast.account.pk}/follow/", {"kinds": ["gossip"]}, format="json"
    )
    assert response.status_code == 400


def test_a_followed_thread_reaches_home_without_the_account(cast: Cast) -> None:
    crm_actions.grant_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    root = post_activity(author=cast.owner, account=cast.account, body="question")
    crm_actions.revoke_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    follow_account(user=cast.teammate, account=cast.account)
    set_thread_subscription(user=cast.support, thread=root, is_muted=False)
    add_comment(actor=cast.teammate, parent=root, body="answer")
    assert home(cast.support) == ["answer", "question"]


def test_a_muted_thread_leaves_home(cast: Cast) -> None:
    root = post_activity(author=cast.teammate, account=cast.account, body="noisy")
    add_comment(actor=cast.teammate, parent=root, body="more noise")
    post_activity(author=cast.teammate, account=cast.account, body="useful")
    set_thread_subscription(user=cast.owner, thread=root, is_muted=True)
    assert home(cast.owner) == ["useful"]


def test_home_forgets_an_account_when_access_goes(cast: Cast) -> None:
    crm_actions.grant_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    post_activity(author=cast.owner, account=cast.account, body="shared")
    assert "shared" in home(cast.outsider)
    crm_actions.revoke_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    assert "shared" not in home(cast.outsider)


def test_search_finds_activities_accounts_and_contacts_one_can_see(cast: Cast) -> None:
    post_activity(author=cast.owner, account=cast.account, body="The renewal contract is signed")
    post_activity(author=cast.outsider, account=cast.west_account, body="Another renewal contract")
    found = client_for(cast.owner).get("/api/v1/search/?q=renewal contract").json()
    assert [a["body"] for a in found["activities"]] == ["The renewal contract is signed"]
    found = client_for(cast.owner).get("/api/v1/search/?q=garcia").json()
    assert [c["name"] for c in found["contacts"]] == ["Maria Garcia"]
    found = client_for(cast.outsider).get("/api/v1/search/?q=acme").json()
    assert found == {"accounts": [], "contacts": [], "activities": []}


def test_search_needs_text(cast: Cast) -> None:
    assert client_for(cast.owner).get("/api/v1/search/?q=").status_code == 400
    assert client_for(cast.owner).get("/api/v1/search/?q=%00").status_code == 400


def test_mention_suggestions_offer_only_people_who_can_see(cast: Cast) -> None:
    client = client_for(cast.owner)
    names = [
        p["username"] for p in client.get(f"/api/v1/accounts/{cast.account.pk}/mentions/?q=").json()
    ]
    assert names == ["admin", "alice", "bob", "carol", "dave"]
    names = [
        p["username"]
        for p in client.get(f"/api/v1/accounts/{cast.account.pk}/mentions/?q=e").json()
    ]
    assert names == []  # erin cannot see Acme


def test_home_feed_page_runs_a_fixed_number_of_queries(cast: Cast) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(cast.owner)
    post_activity(author=cast.owner, account=cast.account, body="one")
    with CaptureQueriesContext(connection) as few:
        client.get("/api/v1/feed/")
    for n in range(15):
        root = post_activity(author=cast.teammate, account=cast.account, body=f"post {n}")
        add_comment(actor=cast.manager, parent=root, body="reply")
    set_thread_subscription(user=cast.owner, thread=root, is_muted=True)
    with CaptureQueriesContext(connection) as many:
        client.get("/api/v1/feed/")
    assert len(few) == len(many)
    assert len(many) <= 2  # what the user follows (accounts, kinds, threads), the page


def test_home_feed_json_is_byte_for_byte_the_activity_serializers(cast: Cast) -> None:
    """The API writes home-feed rows straight from its SQL (feed.sqlrows.ActivityJSONColumns on
    PostgreSQL); the body must be what ActivitySerializer makes of the models, every field."""
    import datetime as dt

    from django.utils import timezone
    from rest_framework.renderers import JSONRenderer

    from feed.actions import (
        create_task,
        edit_activity,
        log_meeting,
        raise_request,
        set_reaction,
    )
    from feed.models import Activity
    from feed.serializers import ActivitySerializer

    now = timezone.now()
    post = post_activity(author=cast.owner, account=cast.account, body="Ünïcode \u2028 <b>")
    set_reaction(actor=cast.teammate, activity=post, kind="like", is_on=True)
    edit_activity(actor=cast.owner, activity=post, body='edited "quoted" text', subject=None)
    add_comment(actor=cast.teammate, parent=post, body="a reply")
    create_task(
        actor=cast.owner,
        account=cast.account,
        subject="call back",
        assignee=cast.teammate,
        due_at=now - dt.timedelta(days=1),
    )
    log_call(
        actor=cast.owner, account=cast.account, body="rang", duration_seconds=90, outcome="busy"
    )
    log_meeting(
        actor=cast.owner,
        account=cast.account,
        subject="kick-off",
        starts_at=now.replace(microsecond=0) + dt.timedelta(days=2),
        users=[cast.teammate],
        decisions=["go"],
    )
    raise_request(actor=cast.owner, account=cast.account, subject="broken", priority="high")

    response = client_for(cast.owner).get("/api/v1/feed/")
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()["results"]]
    assert len(ids) >= 6
    models = Activity.objects.select_related("author", "assignee").in_bulk(ids)
    expected = {"results": [ActivitySerializer(models[pk]).data for pk in ids], "next": None}
    assert response.content == JSONRenderer().render(expected)
