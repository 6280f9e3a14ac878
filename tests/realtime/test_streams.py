"""The stream kinds of DESIGN.md section 4 beyond `account:<id>`: home, team, notifications."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from feed.actions import follow_account, post_activity, unfollow_account
from tests.conftest import Cast
from tests.realtime.test_consumer import communicator, session_cookie, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


async def socket_for(user: object) -> WebsocketCommunicator:
    comm = communicator(cookie=await session_cookie(user))  # type: ignore[arg-type]
    connected, _ = await comm.connect()
    assert connected
    return comm


post = database_sync_to_async(post_activity)


async def test_home_carries_followed_accounts_only(cast: Cast) -> None:
    comm = await socket_for(cast.owner)
    assert (await subscribe(comm, "home"))["type"] == "subscribed"
    mine = await post(author=cast.teammate, account=cast.account, body="on alice's account")
    frame = await comm.receive_json_from(timeout=2)
    assert (frame["type"], frame["stream"], frame["data"]["id"]) == (
        "activity.created",
        "home",
        mine.pk,
    )
    await post(author=cast.outsider, account=cast.west_account, body="not followed")
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_following_while_subscribed_widens_home_at_once(cast: Cast) -> None:
    comm = await socket_for(cast.teammate)
    await subscribe(comm, "home")
    await post(author=cast.owner, account=cast.account, body="before following")
    assert await comm.receive_nothing(timeout=0.3)
    await database_sync_to_async(follow_account)(user=cast.teammate, account=cast.account)
    changed = await comm.receive_json_from(timeout=2)
    assert changed["type"] == "follow.changed" and changed["data"]["following"] is True
    after = await post(author=cast.owner, account=cast.account, body="after following")
    assert (await comm.receive_json_from(timeout=2))["data"]["id"] == after.pk
    await database_sync_to_async(unfollow_account)(user=cast.teammate, account=cast.account)
    assert (await comm.receive_json_from(timeout=2))["data"]["following"] is False
    await post(author=cast.owner, account=cast.account, body="after unfollowing")
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_home_catch_up_spans_accounts_in_commit_order(cast: Cast) -> None:
    from crm import actions as crm_actions

    second = await database_sync_to_async(crm_actions.create_account)(
        actor=cast.admin, name="Second", owner=cast.owner
    )
    bodies = ["a1", "b1", "a2", "b2"]
    for body in bodies:
        account = cast.account if body.startswith("a") else second
        await post(author=cast.owner, account=account, body=body)
    comm = await socket_for(cast.owner)
    await subscribe(comm, "home", since="0")
    got = [(await comm.receive_json_from(timeout=2))["data"]["body"] for _ in bodies]
    assert got == bodies
    await comm.disconnect()


async def test_one_connection_two_streams_each_named(cast: Cast) -> None:
    comm = await socket_for(cast.owner)
    await subscribe(comm, "home")
    await subscribe(comm, f"account:{cast.account.pk}")
    await post(author=cast.teammate, account=cast.account, body="twice")
    frames = [await comm.receive_json_from(timeout=2) for _ in range(2)]
    assert sorted(f["stream"] for f in frames) == sorted(["home", f"account:{cast.account.pk}"])
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


async def test_manager_watches_the_team_and_only_the_team(cast: Cast) -> None:
    comm = await socket_for(cast.manager)
    assert (await subscribe(comm, f"team:{cast.east.pk}"))["type"] == "subscribed"
    by_member = await post(author=cast.owner, account=cast.account, body="east work")
    frame = await comm.receive_json_from(timeout=2)
    assert (frame["stream"], frame["data"]["id"]) == (f"team:{cast.east.pk}", by_member.pk)
    await post(author=cast.outsider, account=cast.west_account, body="west work")
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_member_work_on_another_teams_account_stays_off_the_team_stream(cast: Cast) -> None:
    """Alice, granted on a West account, posts there: dave (manager of East) cannot see that
    account, so the East stream must not carry it."""
    from crm.models import AccountTeamMember

    await database_sync_to_async(AccountTeamMember.objects.create)(
        account=cast.west_account, user=cast.owner
    )
    comm = await socket_for(cast.manager)
    assert (await subscribe(comm, f"team:{cast.east.pk}"))["type"] == "subscribed"
    await post(author=cast.owner, account=cast.west_account, body="granted elsewhere")
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


@pytest.mark.parametrize("who", ["owner", "outsider", "support"])
async def test_only_managers_and_admins_watch_a_team(cast: Cast, who: str) -> None:
    comm = await socket_for(getattr(cast, who))
    hidden = await subscribe(comm, f"team:{cast.east.pk}")
    missing = await subscribe(comm, "team:999999")
    assert hidden["code"] == missing["code"] == "not_found"
    await comm.disconnect()


async def test_admin_watches_any_team(cast: Cast) -> None:
    comm = await socket_for(cast.admin)
    assert (await subscribe(comm, f"team:{cast.west.pk}"))["type"] == "subscribed"
    await comm.disconnect()


async def test_notifications_stream_is_the_users_own(cast: Cast) -> None:
    comm = await socket_for(cast.owner)
    assert (await subscribe(comm, "notifications"))["type"] == "subscribed"
    other = await subscribe(comm, f"notifications:{cast.teammate.pk}")
    assert other["code"] == "not_found"
    await comm.disconnect()


async def test_a_session_that_ends_unannounced_is_caught_by_the_safety_net(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An expired session sends no announcement: the periodic re-check closes the socket right
    after the delivery that found it stale (the re-check never holds delivery up)."""
    from django.contrib.sessions.models import Session

    from realtime import consumers

    monkeypatch.setattr(consumers, "ACCESS_RECHECK_SECONDS", 0.0)
    comm = await socket_for(cast.owner)
    await subscribe(comm, f"account:{cast.account.pk}")
    await database_sync_to_async(lambda: Session.objects.all().delete())()
    await post(author=cast.teammate, account=cast.account, body="after the session ended")
    first = await comm.receive_output(timeout=2)
    assert first["type"] == "websocket.send"
    assert await comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}


async def test_home_carries_followed_threads_and_leaves_out_muted_ones(cast: Cast) -> None:
    from feed.actions import add_comment, set_thread_subscription

    root = await post(author=cast.owner, account=cast.account, body="a thread")
    support = await socket_for(cast.support)  # carol follows no account
    await subscribe(support, "home")
    await database_sync_to_async(set_thread_subscription)(
        user=cast.support, thread=root, is_muted=False
    )
    assert (await support.receive_json_from(timeout=2))["type"] == "follow.changed"
    reply = await database_sync_to_async(add_comment)(
        actor=cast.teammate, parent=root, body="reply"
    )
    frame = await support.receive_json_from(timeout=2)
    assert (frame["stream"], frame["data"]["id"]) == ("home", reply.pk)

    owner = await socket_for(cast.owner)  # alice follows the account as its owner
    await subscribe(owner, "home")
    await database_sync_to_async(set_thread_subscription)(
        user=cast.owner, thread=root, is_muted=True
    )
    assert (await owner.receive_json_from(timeout=2))["type"] == "follow.changed"
    await database_sync_to_async(add_comment)(actor=cast.teammate, parent=root, body="noise")
    assert await owner.receive_nothing(timeout=0.3)
    other = await post(author=cast.teammate, account=cast.account, body="not muted")
    assert (await owner.receive_json_from(timeout=2))["data"]["id"] == other.pk
    await support.disconnect()
    await owner.disconnect()


async def test_thread_moved_out_of_sight_stops_reaching_its_follower(cast: Cast) -> None:
    from feed.actions import add_comment, move_activity

    root = await post(author=cast.owner, account=cast.account, body="misrouted")
    await database_sync_to_async(add_comment)(actor=cast.teammate, parent=root, body="bob's reply")
    comm = await socket_for(cast.teammate)  # bob follows the thread by replying; East only
    await subscribe(comm, "home")
    await database_sync_to_async(move_activity)(
        actor=cast.admin, activity=root, to_account=cast.west_account
    )
    frames = []
    while not await comm.receive_nothing(timeout=0.5):
        frames.append(await comm.receive_json_from(timeout=2))
    leaked = [f for f in frames if f["type"] != "activity.deleted"]
    assert leaked == [], leaked
    await comm.disconnect()


async def test_a_manager_demoted_to_rep_no_longer_watches_the_team(cast: Cast) -> None:
    from crm.models import User

    await database_sync_to_async(User.objects.filter(pk=cast.manager.pk).update)(role="rep")
    comm = await socket_for(cast.manager)
    refused = await subscribe(comm, f"team:{cast.east.pk}")
    assert (refused["type"], refused["code"]) == ("error", "not_found")
    await comm.disconnect()


async def test_requests_stream_carries_requests_its_reader_may_see(cast: Cast) -> None:
    """The support queue's stream: carol (support) hears of requests on every team's accounts,
    erin (West) only of West's; posts on the same accounts are not request events."""
    from feed.actions import raise_request, update_request

    raise_ = database_sync_to_async(raise_request)
    carol, erin = await socket_for(cast.support), await socket_for(cast.outsider)
    for comm in (carol, erin):
        assert (await subscribe(comm, "requests"))["type"] == "subscribed"
    east = await raise_(actor=cast.owner, account=cast.account, subject="East is down")
    frame = await carol.receive_json_from(timeout=2)
    assert (frame["type"], frame["stream"], frame["data"]["id"]) == (
        "activity.created",
        "requests",
        east.pk,
    )
    assert await erin.receive_nothing(timeout=0.3)
    await database_sync_to_async(update_request)(actor=cast.support, request=east, status="waiting")
    frame = await carol.receive_json_from(timeout=2)
    assert (frame["type"], frame["data"]["status"]) == ("activity.updated", "waiting")
    west = await raise_(actor=cast.outsider, account=cast.west_account, subject="West too")
    for comm in (carol, erin):
        frame = await comm.receive_json_from(timeout=2)
        assert frame["data"]["id"] == west.pk
    await post(author=cast.outsider, account=cast.west_account, body="not a request")
    assert await erin.receive_nothing(timeout=0.3)
    for comm in (carol, erin):
        await comm.disconnect()


def test_the_batched_access_question_agrees_with_the_policy(cast: Cast) -> None:
    """The safety-net re-check asks once for every user on a stream (realtime/verdicts.py): its
    answer must be the policy's, user by user, including a grant, a deactivation and a session
    that ended."""
    from crm.actions import grant_account_access
    from crm.visibility import can_see_account
    from realtime import streams, verdicts

    grant_account_access(actor=cast.admin, account=cast.west_account, user=cast.owner)
    cast.teammate.is_active = False
    cast.teammate.save(update_fields=["is_active"])
    people = [cast.owner, cast.teammate, cast.outsider, cast.support, cast.manager, cast.admin]
    for account in (cast.account, cast.west_account):
        resolved = streams.resolve(f"account:{account.pk}")
        assert resolved is not None
        kind, arg = resolved
        name = f"account:{account.pk}"
        questions = [
            verdicts.Question(user=u, session=None, streams=((name, kind, arg),), asked_at=0.0)
            for u in people
        ]
        answers = verdicts.decide(questions)
        for person, verdict in zip(people, answers, strict=True):
            fresh = type(person).objects.get(pk=person.pk)
            allowed = can_see_account(fresh, account.pk)
            assert verdict.is_valid == fresh.is_active, person.username
            if fresh.is_active:
                assert (name not in verdict.lost) == allowed, (person.username, account.name)


async def test_notifications_catch_up_leaves_out_accounts_the_reader_has_lost(cast: Cast) -> None:
    """A catch-up replays `notification.created` events from the outbox; one about an account
    the reader can no longer see names it in its title, so it is passed over (the inbox API
    hides it too), while the rest still arrive, in order."""
    from crm import actions as crm_actions
    from realtime.outbox import newest_event_id
    from tests.conftest import work_happenings

    @database_sync_to_async
    def two_mentions_then_revoke() -> int:
        since = newest_event_id()
        crm_actions.grant_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
        post_activity(author=cast.admin, account=cast.account, body="@erin about Acme")
        post_activity(author=cast.admin, account=cast.west_account, body="@erin about West")
        assert work_happenings() >= 2
        crm_actions.revoke_account_access(
            actor=cast.admin, account=cast.account, user=cast.outsider
        )
        return since

    since = await two_mentions_then_revoke()
    comm = await socket_for(cast.outsider)
    assert (await subscribe(comm, "notifications", since=str(since)))["type"] == "subscribed"
    frame = await comm.receive_json_from(timeout=2)
    assert (frame["type"], frame["data"]["account"]) == (
        "notification.created",
        cast.west_account.pk,
    )
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()
