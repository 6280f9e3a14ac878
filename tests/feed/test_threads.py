"""Threads, edits with revisions, soft deletes, reactions, and the events each one sends."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from feed.actions import add_comment, post_activity
from feed.models import Activity, AuditEntry
from realtime.models import Event
from tests.conftest import Cast, client_for


def events_since(last: int) -> list[tuple[str, str]]:
    return list(Event.objects.filter(id__gt=last).order_by("id").values_list("stream", "type"))


def newest() -> int:
    event = Event.objects.order_by("-id").first()
    return event.pk if event else 0


def test_replies_join_the_root_thread_and_show_in_place(cast: Cast) -> None:
    root = post_activity(author=cast.owner, account=cast.account, body="Renewal?")
    client = client_for(cast.teammate)
    first = client.post(f"/api/v1/activities/{root.pk}/comments/", {"body": "Yes"}, format="json")
    second = client.post(
        f"/api/v1/activities/{first.json()['id']}/comments/", {"body": "Signed"}, format="json"
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["parent"] == second.json()["parent"] == root.pk
    page = client.get(f"/api/v1/accounts/{cast.account.pk}/activities/").json()["results"]
    assert [entry["id"] for entry in page] == [root.pk]
    assert [reply["body"] for reply in page[0]["replies"]] == ["Yes", "Signed"]


def test_timeline_with_threads_runs_a_fixed_number_of_queries(cast: Cast) -> None:
    client = client_for(cast.owner)
    url = f"/api/v1/accounts/{cast.account.pk}/activities/"
    post_activity(author=cast.owner, account=cast.account, body="one")
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for n in range(10):
        root = post_activity(author=cast.owner, account=cast.account, body=f"thread {n}")
        for m in range(3):
            add_comment(actor=cast.teammate, parent=root, body=f"reply {m}")
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(few) == len(many) == 1  # visibility, roots, replies and people in one statement


def test_comment_goes_to_account_thread_team_and_the_authors_home(cast: Cast) -> None:
    root = post_activity(author=cast.owner, account=cast.account, body="Renewal?")
    last = newest()
    add_comment(actor=cast.teammate, parent=root, body="Yes")
    sent = list(
        Event.objects.filter(id__gt=last).order_by("id").values_list("stream", "topic", "type")
    )
    assert sent == [
        (f"account:{cast.account.pk}", f"thread:{root.pk}", "activity.created"),
        (f"team:{cast.east.pk}", "", "activity.created"),
        (f"user:{cast.teammate.pk}", "", "follow.changed"),
    ]
    add_comment(actor=cast.teammate, parent=root, body="Again")
    assert [
        t for _, _, t in Event.objects.filter(id__gt=last).values_list("stream", "topic", "type")
    ].count("follow.changed") == 1  # the author follows the thread once


def test_edit_keeps_revisions_for_readers(cast: Cast) -> None:
    post = post_activity(author=cast.owner, account=cast.account, body="Deal at 40k")
    client = client_for(cast.owner)
    last = newest()
    edited = client.patch(f"/api/v1/activities/{post.pk}/", {"body": "Deal at 45k"}, format="json")
    assert edited.status_code == 200 and edited.json()["is_edited"] is True
    # The account's readers, and the author's team's managers (the dashboard ticker).
    assert events_since(last) == [
        (f"account:{cast.account.pk}", "activity.updated"),
        (f"team:{cast.east.pk}", "activity.updated"),
    ]
    revisions = client_for(cast.teammate).get(f"/api/v1/activities/{post.pk}/revisions/").json()
    assert [(r["body"], r["editor"]["username"]) for r in revisions] == [("Deal at 40k", "alice")]


def test_only_the_author_edits(cast: Cast) -> None:
    post = post_activity(author=cast.owner, account=cast.account, body="mine")
    response = client_for(cast.teammate).patch(
        f"/api/v1/activities/{post.pk}/", {"body": "x"}, format="json"
    )
    assert response.status_code == 403
    post.refresh_from_db()
    assert post.body == "mine"


def test_delete_is_soft_audited_and_announced(cast: Cast) -> None:
    post = post_activity(author=cast.owner, account=cast.account, body="oops")
    last = newest()
    assert client_for(cast.owner).delete(f"/api/v1/activities/{post.pk}/").status_code == 204
    assert Activity.objects.filter(pk=post.pk, deleted_at__isnull=False).exists()
    assert AuditEntry.objects.get(activity=post).action == "deleted"
    # The account's readers, and the author's team (the dashboard's ticker and counts).
    assert events_since(last) == [
        (f"account:{cast.account.pk}", "activity.deleted"),
        (f"team:{cast.east.pk}", "activity.deleted"),
    ]
    assert client_for(cast.owner).get(f"/api/v1/activities/{post.pk}/").status_code == 404


def test_a_deleted_post_takes_its_thread_with_it(cast: Cast) -> None:
    """A reply left on its own stayed in its readers' home feeds after its post was deleted,
    quoting the deleted text (found in a browser walk-through)."""
    post = post_activity(author=cast.owner, account=cast.account, body="Wrong figures")
    reply = add_comment(actor=cast.teammate, parent=post, body="Which ones?")
    earlier = add_comment(actor=cast.owner, parent=post, body="Withdrawn")
    client_for(cast.manager).put(f"/api/v1/accounts/{cast.account.pk}/follow/")
    feed = client_for(cast.manager).get("/api/v1/feed/").json()["results"]
    assert {reply.pk, earlier.pk} <= {item["id"] for item in feed}
    last = newest()
    assert client_for(cast.owner).delete(f"/api/v1/activities/{post.pk}/").status_code == 204
    feed = client_for(cast.manager).get("/api/v1/feed/").json()["results"]
    assert {post.pk, reply.pk, earlier.pk}.isdisjoint(item["id"] for item in feed)
    assert "Wrong figures" not in str(feed)
    timeline = client_for(cast.manager).get(f"/api/v1/accounts/{cast.account.pk}/activities/")
    assert {post.pk, reply.pk, earlier.pk}.isdisjoint(i["id"] for i in timeline.json()["results"])
    assert set(
        AuditEntry.objects.filter(action="deleted", actor=cast.owner).values_list(
            "activity_id", flat=True
        )
    ) == {post.pk, reply.pk, earlier.pk}
    deleted = Event.objects.filter(id__gt=last, stream=f"account:{cast.account.pk}")
    assert [e.data["id"] for e in deleted.order_by("id")] == [earlier.pk, reply.pk, post.pk]
    assert client_for(cast.teammate).get(f"/api/v1/activities/{reply.pk}/").status_code == 404


def test_others_get_404_when_deleting_and_admin_may(cast: Cast) -> None:
    post = post_activity(author=cast.owner, account=cast.account, body="keep")
    hidden = client_for(cast.teammate).delete(f"/api/v1/activities/{post.pk}/")
    missing = client_for(cast.teammate).delete("/api/v1/activities/999999/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content == missing.content
    assert client_for(cast.admin).delete(f"/api/v1/activities/{post.pk}/").status_code == 204


def test_likes_say_who_and_are_idempotent(cast: Cast) -> None:
    post = post_activity(author=cast.owner, account=cast.account, body="Won it!")
    like = f"/api/v1/activities/{post.pk}/reactions/like/"
    client_for(cast.teammate).put(like)
    client_for(cast.teammate).put(like)
    data = client_for(cast.manager).put(like).json()
    assert data["reactions"] == {"like": ["bob", "dave"]}
    data = client_for(cast.teammate).delete(like).json()
    assert data["reactions"] == {"like": ["dave"]}
    assert (
        client_for(cast.owner).put(f"/api/v1/activities/{post.pk}/reactions/love/").status_code
        == 400
    )
