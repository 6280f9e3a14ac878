"""Each activity's stored JSON head (`feed_activity.rendered`, kept by PostgreSQL triggers:
migration feed 0010) equals the head freshly written from the models after every kind of write,
through any door: the actions, queryset updates, bulk updates, raw SQL, renamed people."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from crm.models import User
from feed.actions import (
    add_comment,
    create_task,
    delete_activity,
    edit_activity,
    log_call,
    log_meeting,
    merge_accounts,
    move_activity,
    post_activity,
    raise_request,
    set_reaction,
    set_task_done,
    update_request,
)
from feed.models import Activity
from feed.serializers import activity_json
from tests.conftest import Cast, client_for, make_account

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the stored head is kept by PostgreSQL triggers"
)


def _head_from_models(activity: Activity) -> str:
    """What the stored head must hold: activity_json as DRF renders it, up to its details, with
    is_overdue false (the page splices in the time-dependent value) and U+2028/U+2029 as
    PostgreSQL leaves them (the page body escapes them)."""
    data = activity_json(activity)
    data["is_overdue"] = False
    text = JSONRenderer().render(data).decode()
    text = text.replace("\\u2028", "\u2028").replace("\\u2029", "\u2029")
    return text[: text.index(',"details":')]


def stale_heads() -> dict[int, tuple[str, str]]:
    """Activities whose stored head is not the one written afresh from the models (or from the
    trigger's own function): id -> (stored, fresh)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, rendered, feed_activity_json_head(a) FROM feed_activity a")
        stored = {pk: (rendered, again) for pk, rendered, again in cursor.fetchall()}
    stale = {}
    for activity in Activity.objects.select_related("author", "assignee"):
        rendered, again = stored[activity.pk]
        fresh = _head_from_models(activity)
        if rendered != fresh or again != fresh:
            stale[activity.pk] = (rendered, fresh)
    return stale


def test_stored_json_head_follows_every_change_to_the_row_or_its_people(cast: Cast) -> None:
    now = timezone.now()
    post = post_activity(author=cast.owner, account=cast.account, body="first \u2028 “text”")
    task = create_task(
        actor=cast.owner,
        account=cast.account,
        subject="call back",
        assignee=cast.teammate,
        due_at=now - dt.timedelta(days=1),
    )
    call = log_call(
        actor=cast.owner, account=cast.account, body="rang", duration_seconds=90, outcome="busy"
    )
    meeting = log_meeting(
        actor=cast.owner,
        account=cast.account,
        subject="QBR",
        starts_at=now.replace(microsecond=0),
        ends_at=now + dt.timedelta(hours=1),
    )
    request = raise_request(actor=cast.owner, account=cast.account, subject="broken\x01")
    reply = add_comment(actor=cast.teammate, parent=post, body='a "reply"\\')
    assert stale_heads() == {}
    assert {call.pk, meeting.pk} <= set(Activity.objects.values_list("pk", flat=True))

    edit_activity(actor=cast.owner, activity=post, body="edited", subject=None)
    assert stale_heads() == {}
    set_reaction(actor=cast.teammate, activity=post, kind="like", is_on=True)
    set_task_done(actor=cast.teammate, task=task)
    assert stale_heads() == {}
    update_request(actor=cast.support, request=request, status="resolved", assignee=cast.support)
    delete_activity(actor=cast.teammate, activity=reply)
    assert stale_heads() == {}

    other = make_account(cast.admin, cast.owner, "Acme Two")
    move_activity(actor=cast.admin, activity=post, to_account=other)
    assert Activity.objects.get(pk=post.pk).account_id == other.pk
    assert stale_heads() == {}
    merge_accounts(actor=cast.admin, survivor=other, loser=cast.account)
    assert Activity.objects.get(pk=task.pk).account_id == other.pk
    assert stale_heads() == {}


def test_stored_json_head_follows_renamed_and_erased_people(cast: Cast) -> None:
    task = create_task(
        actor=cast.owner, account=cast.account, subject="follow up", assignee=cast.teammate
    )
    post_activity(author=cast.teammate, account=cast.account, body="hello")
    cast.owner.first_name, cast.owner.last_name = "\u3000Alicia\u2003", "\t"
    cast.owner.save(update_fields=["first_name", "last_name"])
    assert stale_heads() == {}
    User.objects.filter(pk=cast.teammate.pk).update(username="robert", first_name="")
    assert stale_heads() == {}
    # An erasure of the person's names, as a bulk update would write it.
    User.objects.filter(pk__in=[cast.owner.pk, cast.teammate.pk]).update(
        first_name="[erased]", last_name=""
    )
    assert stale_heads() == {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT rendered FROM feed_activity")
        assert all("Alicia" not in text for (text,) in cursor.fetchall())
    assert client_for(cast.owner).get(f"/api/v1/accounts/{cast.account.pk}/activities/").json()[
        "results"
    ][-1]["assignee"] == {"id": cast.teammate.pk, "username": "robert", "display_name": "[erased]"}
    assert task.pk


def test_stored_json_head_follows_bulk_and_raw_writes(cast: Cast) -> None:
    posts = [
        post_activity(author=cast.owner, account=cast.account, body=f"post {n}") for n in range(3)
    ]
    Activity.objects.filter(pk=posts[0].pk).update(
        body="updated", edited_at=timezone.now(), assignee=cast.teammate
    )
    for post in posts[1:]:
        post.subject = "bulk"
        post.occurred_at = timezone.now().replace(microsecond=0)
    Activity.objects.bulk_update(posts[1:], ["subject", "occurred_at"])
    assert stale_heads() == {}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE feed_activity SET body = 'raw', rendered = 'forged' WHERE id = %s",
            [posts[2].pk],
        )
        cursor.execute("UPDATE feed_activity SET rendered = 'forged' WHERE id = %s", [posts[1].pk])
    assert stale_heads() == {}
