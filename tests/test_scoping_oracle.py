"""Scoping against an oracle (RELIABILITY.md "Access"): random teams, roles, owners, grants,
archived and merged accounts; every list, feed, search, stream and notification agrees with an
independently written `can_see`, which reads the generated plan, never the database."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from crm.models import Account, AccountTeamMember, Team, User
from crm.visibility import visible_accounts
from feed.actions import log_activity
from feed.models import Follow
from feed.queries import home_feed, search
from notifications.models import Notification
from realtime.streams import resolve
from tests.conftest import client_for, work_happenings

ROLES = ["rep", "rep", "support", "manager", "admin"]


@dataclass(frozen=True)
class PersonPlan:
    role: str
    team: int | None
    is_active: bool
    manages: frozenset[int]


@dataclass(frozen=True)
class AccountPlan:
    owner: int
    team: int
    is_archived: bool
    is_merged: bool
    granted: frozenset[int]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[int, list[PersonPlan], list[AccountPlan]]:
    teams = draw(st.integers(1, 3))
    team = st.integers(0, teams - 1)
    people = draw(
        st.lists(
            st.builds(
                PersonPlan,
                role=st.sampled_from(ROLES),
                team=st.none() | team,
                is_active=st.booleans() | st.just(True),
                manages=st.frozensets(team, max_size=2),
            ),
            min_size=2,
            max_size=6,
        )
    )
    person = st.integers(0, len(people) - 1)
    accounts = draw(
        st.lists(
            st.builds(
                AccountPlan,
                owner=person,
                team=team,
                is_archived=st.booleans().map(lambda b: b and draw(st.booleans())),
                is_merged=st.just(False) | st.booleans(),
                granted=st.frozensets(person, max_size=3),
            ),
            min_size=1,
            max_size=5,
        )
    )
    return teams, people, accounts


def can_see(person: PersonPlan, index: int, account: AccountPlan) -> bool:
    """The policy of DESIGN.md section 1, written again from the plan."""
    if not person.is_active or account.is_archived or account.is_merged:
        return False
    if person.role in ("admin", "support"):
        return True
    if account.owner == index or index in account.granted:
        return True
    if person.team is not None and person.team == account.team:
        return True
    return person.role == "manager" and account.team in person.manages


class ScopingOracle(TestCase):
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(worlds())
    def test_every_read_agrees_with_the_oracle(
        self, world: tuple[int, list[PersonPlan], list[AccountPlan]]
    ) -> None:
        team_count, people, plans = world
        teams = [Team.objects.create(name=f"Team {n}") for n in range(team_count)]
        users = [
            User.objects.create(
                username=f"person{n}",
                role=plan.role,
                team=teams[plan.team] if plan.team is not None else None,
                is_active=plan.is_active,
            )
            for n, plan in enumerate(people)
        ]
        for user, plan in zip(users, people, strict=True):
            for managed in plan.manages:
                teams[managed].managers.add(user)
        writer = User.objects.create(username="writer", role="admin")
        survivor = Account.objects.create(name="Survivor", owner=writer, team=teams[0])
        accounts = []
        for n, plan in enumerate(plans):
            account = Account.objects.create(
                name=f"Account {n}",
                owner=users[plan.owner],
                team=teams[plan.team],
                archived_at=timezone.now() if plan.is_archived else None,
            )
            for granted in plan.granted:
                AccountTeamMember.objects.create(account=account, user=users[granted])
            # Every person follows every account, and everyone is mentioned on each.
            Follow.objects.bulk_create([Follow(user=user, account=account) for user in users])
            names = " ".join(f"@{user.username}" for user in users)
            log_activity(actor=None, account=account, kind="post", body=f"needle {names}")
            if plan.is_merged:
                Account.objects.filter(pk=account.pk).update(merged_into=survivor)
            accounts.append(account)
        work_happenings()

        for index, (user, person) in enumerate(zip(users, people, strict=True)):
            expected = {
                account.pk
                for account, plan in zip(accounts, plans, strict=True)
                if can_see(person, index, plan)
            }
            if not person.is_active:
                expected_with_survivor = set()
            else:
                survivor_plan = AccountPlan(writer.pk, 0, False, False, frozenset())
                sees_survivor = can_see(person, -1, survivor_plan)
                expected_with_survivor = expected | ({survivor.pk} if sees_survivor else set())
            where = f"{person} (index {index})"

            assert set(visible_accounts(user).values_list("pk", flat=True)) == (
                expected_with_survivor
            ), where

            api = client_for(user)
            if person.is_active:
                listed = {row["id"] for row in api.get("/api/v1/accounts/").json()["results"]}
                assert listed == expected_with_survivor, where
            for account in accounts:
                status = api.get(f"/api/v1/accounts/{account.pk}/").status_code
                assert status == (200 if account.pk in expected else 404), (where, account)
                kind = resolve(f"account:{account.pk}")
                assert kind is not None
                assert kind[0].can_see(user, account.pk) == (account.pk in expected), where

            feed_accounts = {activity.account_id for activity in home_feed(user).results}
            assert feed_accounts == expected, where
            found = {activity.account_id for activity in search(user, "needle")["activities"]}
            assert found == expected, where
            told = set(
                Notification.objects.filter(recipient=user).values_list("account_id", flat=True)
            )
            # Merged-away accounts' posts were made before the merge: the policy applied then.
            merged = {a.pk for a, p in zip(accounts, plans, strict=True) if p.is_merged}
            assert told - merged == expected - merged, where
