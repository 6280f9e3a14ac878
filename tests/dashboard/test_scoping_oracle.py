"""Scoping against an oracle (RELIABILITY.md): random teams, owners, grants and requests; the
queue and the dashboard's numbers must match an independently written `can_see(user, account)`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Account, AccountTeamMember, Team, User
from dashboard.queries import activity_by_rep, dashboard_scope, open_work
from feed.models import Activity
from support.queries import QueueFilters, request_queue

ROLES = ["rep", "rep", "rep", "manager", "support", "admin"]


def can_see(user: User, account: Account, grants: set[tuple[int, int]]) -> bool:
    """The policy of DESIGN.md §1, written again from the words, not from crm.visibility."""
    if user.role in ("admin", "support"):
        return True
    if account.owner_id == user.pk or (user.pk, account.pk) in grants:
        return True
    if user.team_id is not None and account.team_id == user.team_id:
        return True
    managed = set(user.managed_teams.values_list("pk", flat=True))
    return user.role == "manager" and account.team_id in managed


world = st.fixed_dictionaries(
    {
        "users": st.lists(
            st.tuples(st.sampled_from(ROLES), st.integers(0, 2)), min_size=2, max_size=6
        ),
        "manages": st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2)), max_size=4),
        "accounts": st.lists(
            st.tuples(st.integers(0, 2), st.integers(0, 5)), min_size=1, max_size=6
        ),
        "grants": st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=4),
        "items": st.lists(
            st.tuples(
                st.integers(0, 5),  # account
                st.integers(0, 5),  # author
                st.sampled_from(["request", "post", "email", "call", "task"]),
                st.sampled_from(["open", "in_progress", "resolved"]),
                st.integers(0, 5),  # assignee
            ),
            max_size=12,
        ),
    }
)


def _build(spec: dict[str, Any]) -> tuple[list[User], list[Account], set[tuple[int, int]]]:
    teams = [Team.objects.create(name=f"T{i}") for i in range(3)]
    users = [
        User.objects.create(
            username=f"u{i}", role=role, team=teams[team] if role == "rep" else None
        )
        for i, (role, team) in enumerate(spec["users"])
    ]
    for who, team in spec["manages"]:
        user = users[who % len(users)]
        if user.role == "manager":
            teams[team].managers.add(user)
    accounts = [
        Account.objects.create(name=f"A{i}", team=teams[team], owner=users[owner % len(users)])
        for i, (team, owner) in enumerate(spec["accounts"])
    ]
    grants: set[tuple[int, int]] = set()
    for who, which in spec["grants"]:
        user, account = users[who % len(users)], accounts[which % len(accounts)]
        if (user.pk, account.pk) not in grants:
            AccountTeamMember.objects.create(user=user, account=account)
            grants.add((user.pk, account.pk))
    now = timezone.now()
    for n, (which, author, kind, status, assignee) in enumerate(spec["items"]):
        Activity.objects.create(
            account=accounts[which % len(accounts)],
            author=users[author % len(users)],
            kind=kind,
            subject=f"item {n}",
            status=status if kind == "request" else "",
            assignee=users[assignee % len(users)] if kind in ("request", "task") else None,
            due_at=now - dt.timedelta(hours=1) if kind in ("request", "task") else None,
            occurred_at=now - dt.timedelta(hours=n + 1),
        )
    return users, accounts, grants


@pytest.mark.django_db
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=world)
def test_queue_and_dashboard_count_only_what_the_oracle_allows(spec: dict[str, Any]) -> None:
    with transaction.atomic():
        users, accounts, grants = _build(spec)
        by_id = {account.pk: account for account in accounts}
        items = list(Activity.objects.all())
        for user in users:

            def visible(activity: Activity, user: User = user) -> bool:
                return can_see(user, by_id[activity.account_id], grants)

            expected_queue = {
                a.pk for a in items if a.kind == "request" and a.status != "resolved" and visible(a)
            }
            assert {a.pk for a in request_queue(user, QueueFilters())} == expected_queue

            scope = dashboard_scope(user, {"period": "week"}, now=timezone.now())
            for row in activity_by_rep(scope):
                for kind in ("post", "email", "call", "request"):
                    expected = sum(
                        1
                        for a in items
                        if a.author_id == row.person.pk and a.kind == kind and visible(a)
                    )
                    assert getattr(row, kind) == expected, (
                        user.username,
                        row.person.username,
                        kind,
                    )
            for work in open_work(scope):
                expected = sum(
                    1
                    for a in items
                    if a.assignee_id == work.person.pk
                    and a.kind == "request"
                    and a.status != "resolved"
                    and visible(a)
                )
                assert work.overdue_requests == expected
            if user.role == "manager":
                managed = set(user.managed_teams.values_list("pk", flat=True))
                assert scope.team is None or scope.team.pk in managed
            elif user.role != "admin":
                assert [p.pk for p in scope.people] == [user.pk]
        transaction.set_rollback(True)
