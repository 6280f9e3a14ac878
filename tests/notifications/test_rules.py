"""The rules as a table: facts in, who is told and why out."""

from __future__ import annotations

import datetime as dt

import pytest

from notifications import rules
from notifications.models import Delivery, Kind

ACTOR, ALICE, BOB, CAROL, DAVE = 1, 2, 3, 4, 5
EVERYONE = frozenset({ACTOR, ALICE, BOB, CAROL, DAVE})


def facts(**given: object) -> rules.Facts:
    base: dict[str, object] = {"what": rules.CREATED, "kind": "post", "actor": ACTOR}
    base["can_see"] = EVERYONE
    return rules.Facts(**{**base, **given})  # type: ignore[arg-type]


CASES = [
    ("mention", facts(mentioned=frozenset({ALICE})), {ALICE: Kind.MENTION}),
    ("self-mention is silent", facts(mentioned=frozenset({ACTOR})), {}),
    (
        "mention of someone who cannot see the account",
        facts(mentioned=frozenset({ALICE, BOB}), can_see=frozenset({ACTOR, BOB})),
        {BOB: Kind.MENTION},
    ),
    ("task assigned to someone", facts(kind="task", assignee=BOB), {BOB: Kind.ASSIGNED}),
    ("task one assigns oneself", facts(kind="task", assignee=ACTOR), {}),
    ("request assigned on creation", facts(kind="request", assignee=CAROL), {CAROL: Kind.ASSIGNED}),
    ("post has no assignee rule", facts(kind="post", assignee=BOB), {}),
    (
        "reply reaches thread author and followers",
        facts(kind="comment", thread_author=ALICE, thread_followers=frozenset({BOB})),
        {ALICE: Kind.REPLY, BOB: Kind.REPLY},
    ),
    (
        "muted thread is silent, even for its author",
        facts(
            kind="comment",
            thread_author=ALICE,
            thread_followers=frozenset({BOB}),
            thread_muters=frozenset({ALICE}),
        ),
        {BOB: Kind.REPLY},
    ),
    (
        "mention beats reply beats follow: one notification per person",
        facts(
            kind="comment",
            mentioned=frozenset({ALICE}),
            thread_author=ALICE,
            thread_followers=frozenset({BOB}),
            account_followers={ALICE: frozenset(), BOB: frozenset(), DAVE: frozenset()},
        ),
        {ALICE: Kind.MENTION, BOB: Kind.REPLY, DAVE: Kind.FOLLOWED_ACTIVITY},
    ),
    (
        "followers by kind preference",
        facts(
            kind="call",
            account_followers={ALICE: frozenset({"call"}), BOB: frozenset({"post"})},
        ),
        {ALICE: Kind.FOLLOWED_ACTIVITY},
    ),
    (
        "follower who muted the thread hears nothing of it",
        facts(kind="comment", account_followers={DAVE: frozenset()}, thread_muters={DAVE}),
        {},
    ),
    (
        "follower who lost access hears nothing",
        facts(account_followers={DAVE: frozenset()}, can_see=frozenset({ACTOR})),
        {},
    ),
    (
        "the actor following the account is not told of their own post",
        facts(account_followers={ACTOR: frozenset()}),
        {},
    ),
    (
        "later assignment",
        facts(what=rules.ASSIGNED, kind="request", assignee=CAROL, author=ALICE),
        {CAROL: Kind.ASSIGNED},
    ),
    (
        "request status reaches its author and thread followers",
        facts(
            what=rules.STATUS_CHANGED,
            kind="request",
            author=ALICE,
            thread_followers=frozenset({BOB}),
            account_followers={DAVE: frozenset()},
        ),
        {ALICE: Kind.REQUEST_STATUS, BOB: Kind.REQUEST_STATUS},
    ),
    (
        "the author who muted their request hears nothing of it",
        facts(what=rules.STATUS_CHANGED, kind="request", author=ALICE, thread_muters={ALICE}),
        {},
    ),
    (
        "the author changing their own request's status is not told",
        facts(what=rules.STATUS_CHANGED, kind="request", author=ACTOR),
        {},
    ),
    (
        "system activity has no actor to skip",
        facts(actor=None, mentioned={ALICE}),
        {ALICE: Kind.MENTION},
    ),
]


@pytest.mark.parametrize(("name", "given", "expected"), CASES, ids=[case[0] for case in CASES])
def test_rule(name: str, given: rules.Facts, expected: dict[int, str]) -> None:
    assert rules.recipients(given) == expected


@pytest.mark.parametrize(
    ("kind", "chosen", "follow", "expected"),
    [
        (Kind.MENTION, {}, "", Delivery.EMAIL),
        (Kind.ASSIGNED, {}, "", Delivery.EMAIL),
        (Kind.REPLY, {}, "", Delivery.EMAIL),
        (Kind.FOLLOWED_ACTIVITY, {}, "", Delivery.DIGEST),
        (Kind.MEETING_REMINDER, {}, "", Delivery.IN_APP),
        (Kind.MENTION, {Kind.MENTION: Delivery.OFF}, "", Delivery.OFF),
        (Kind.FOLLOWED_ACTIVITY, {Kind.FOLLOWED_ACTIVITY: Delivery.IN_APP}, "", Delivery.IN_APP),
        # The per-follow choice beats the general one, for followed activity only.
        (Kind.FOLLOWED_ACTIVITY, {Kind.FOLLOWED_ACTIVITY: Delivery.OFF}, "email", Delivery.EMAIL),
        (Kind.MENTION, {}, "off", Delivery.EMAIL),
    ],
)
def test_delivery(kind: str, chosen: dict[str, str], follow: str, expected: str) -> None:
    assert rules.delivery_for(kind, chosen, follow) == expected


NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("starts_in", "lead", "expected"),
    [
        (10, 15, True),
        (15, 15, True),
        (16, 15, False),
        (0, 15, False),
        (-5, 15, False),
        (50, 60, True),
    ],
)
def test_reminder_window(starts_in: int, lead: int, expected: bool) -> None:
    starts_at = NOW + dt.timedelta(minutes=starts_in)
    assert rules.reminder_is_due(starts_at, lead, NOW) is expected


@pytest.mark.parametrize(
    ("due_in_hours", "is_done", "expected"),
    [
        (-1, False, Kind.TASK_OVERDUE),
        (0, False, Kind.TASK_OVERDUE),
        (5, False, Kind.TASK_DUE),
        (24, False, Kind.TASK_DUE),
        (25, False, ""),
        (-1, True, ""),
        (None, False, ""),
    ],
)
def test_task_alert(due_in_hours: int | None, is_done: bool, expected: str) -> None:
    due_at = None if due_in_hours is None else NOW + dt.timedelta(hours=due_in_hours)
    done_at = NOW if is_done else None
    assert rules.task_alert(due_at, done_at, NOW) == expected
