"""The team dashboard: its numbers agree with a direct count, include only what its reader may
see, and each panel costs a fixed number of queries."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm import actions as crm
from crm.models import AccountTeamMember, User
from dashboard.queries import (
    activity_by_rep,
    cold_accounts,
    dashboard_scope,
    open_work,
    pipeline_movement,
    team_ticker,
)
from feed.actions import (
    add_comment,
    create_task,
    log_activity,
    post_activity,
    raise_request,
    set_task_done,
    update_request,
)
from feed.actions.touches import refresh_touches
from feed.models import Activity
from tests.conftest import Cast, make_account


def _soon() -> dt.datetime:
    """A moment just after the fixture's writes: everything it made happened before it."""
    return timezone.now() + dt.timedelta(seconds=5)


def _at(activity: Activity, days_ago: float) -> None:
    """Move an activity into the past. No action rewrites history, so the accounts' last touch
    (kept by the actions) is read again here, as after a move."""
    moment = timezone.now() - dt.timedelta(days=days_ago)
    Activity.objects.filter(pk=activity.pk).update(occurred_at=moment)
    refresh_touches([activity.account_id])


@pytest.fixture
def history(cast: Cast) -> Cast:
    """A little of everything, some inside the week, some before it, some on West."""
    now = timezone.now()
    south = make_account(cast.admin, cast.teammate, "Southgate", region="South", industry="Retail")
    for days, kind in [(1, "email"), (2, "call"), (3, "meeting"), (9, "email"), (0.5, "email")]:
        _at(log_activity(actor=cast.owner, account=cast.account, kind=kind, subject=kind), days)
    _at(post_activity(author=cast.owner, account=cast.account, body="Week"), 2)
    _at(post_activity(author=cast.teammate, account=south, body="South"), 1)
    _at(post_activity(author=cast.owner, account=cast.account, body="Old"), 20)
    # Alice, granted on a West account, works there too: dave cannot see it, so it is not his count.
    AccountTeamMember.objects.create(account=cast.west_account, user=cast.owner)
    _at(post_activity(author=cast.owner, account=cast.west_account, body="West"), 1)
    task = create_task(
        actor=cast.owner, account=cast.account, subject="Quote", due_at=now - dt.timedelta(days=1)
    )
    set_task_done(actor=cast.owner, task=task)
    create_task(
        actor=cast.owner, account=cast.account, subject="Late", due_at=now - dt.timedelta(days=2)
    )
    request = raise_request(
        actor=cast.owner, account=cast.account, subject="Help", due_at=now - dt.timedelta(hours=1)
    )
    update_request(actor=cast.support, request=request, assignee=cast.teammate)
    opportunity = cast.account.opportunities.get()
    crm.update_opportunity(actor=cast.owner, opportunity=opportunity, stage="proposal")
    crm.update_opportunity(actor=cast.teammate, opportunity=opportunity, amount=65_000)
    # Bob follows West's account through a grant (quiet auto-follow); dave still cannot see it.
    AccountTeamMember.objects.create(account=cast.west_account, user=cast.teammate)
    return cast


def _direct(viewer: User, person: User, kind: str, since: dt.datetime, until: dt.datetime) -> int:
    """Written apart from the dashboard: the activity of `person` on accounts `viewer` may see."""
    from crm.visibility import can_see_account

    return sum(
        1
        for activity in Activity.objects.filter(author=person, kind=kind, deleted_at__isnull=True)
        if since <= activity.occurred_at < until and can_see_account(viewer, activity.account_id)
    )


def test_activity_by_rep_agrees_with_a_direct_count(history: Cast) -> None:
    scope = dashboard_scope(history.manager, {"period": "week"}, now=_soon())
    rows = {row.person.username: row for row in activity_by_rep(scope)}
    assert set(rows) == {"alice", "bob"}  # East's members; nobody of West
    for name, person in [("alice", history.owner), ("bob", history.teammate)]:
        for kind in ("post", "email", "meeting", "call", "request"):
            assert getattr(rows[name], kind) == _direct(
                history.manager, person, kind, scope.since, scope.now
            )
    alice = rows["alice"]
    assert (alice.post, alice.email, alice.call, alice.meeting, alice.request) == (1, 2, 1, 1, 1)
    assert alice.tasks_done == 1
    # Acme only: the West account she was granted is not dave's to see.
    assert alice.accounts_touched == 1
    assert rows["bob"].post == 1


def test_filters_narrow_the_counts(history: Cast) -> None:
    later = _soon()
    day = {
        row.person.username: row
        for row in activity_by_rep(dashboard_scope(history.manager, {"period": "day"}, now=later))
    }
    assert day["alice"].email == 1
    south = {
        row.person.username: row
        for row in activity_by_rep(dashboard_scope(history.manager, {"region": "South"}, now=later))
    }
    assert (south["alice"].post, south["bob"].post) == (0, 1)
    retail = dashboard_scope(history.manager, {"industry": "Nothing"}, now=later)
    assert all(row.total == 0 for row in activity_by_rep(retail))


def test_a_manager_cannot_choose_a_team_they_do_not_manage(history: Cast) -> None:
    scope = dashboard_scope(history.manager, {"team": str(history.west.pk)})
    assert scope.team == history.east


def test_a_rep_gets_their_own_numbers(history: Cast) -> None:
    scope = dashboard_scope(history.owner, {"team": str(history.east.pk)})
    assert scope.team is None and [p.username for p in scope.people] == ["alice"]
    page = Client()
    page.force_login(history.outsider)
    body = page.get("/dashboard/").content.decode()
    assert "Your numbers" in body and "Alice" not in body
    assert 'data-stream="team:' not in body


def test_admin_may_pick_any_team(history: Cast) -> None:
    scope = dashboard_scope(history.admin, {"team": str(history.west.pk)})
    assert scope.team == history.west and [p.username for p in scope.people] == ["erin"]


def test_open_work_counts_overdue_tasks_and_requests_by_person(history: Cast) -> None:
    scope = dashboard_scope(history.manager, {})
    work = {row.person.username: row for row in open_work(scope)}
    assert (work["alice"].open_tasks, work["alice"].overdue_tasks) == (1, 1)
    assert (work["bob"].open_requests, work["bob"].overdue_requests) == (1, 1)
    direct = Activity.objects.filter(
        kind="task", assignee=history.owner, done_at__isnull=True, due_at__lt=scope.now
    ).count()
    assert work["alice"].overdue_tasks == direct


def test_pipeline_movement_from_tracked_changes(history: Cast) -> None:
    movement = pipeline_movement(dashboard_scope(history.manager, {}))
    assert (movement.stage_changes, movement.amount_changes) == (1, 1)
    assert movement.net_amount == 15_000
    assert movement.by_stage == {"Proposal": 1}
    assert pipeline_movement(dashboard_scope(history.outsider, {})).stage_changes == 0


def test_cold_accounts_are_owned_or_followed_and_visible(history: Cast) -> None:
    quiet = make_account(history.admin, history.owner, "Quiet Co")
    _at(log_activity(actor=history.owner, account=quiet, kind="email", subject="hi"), 30)
    scope = dashboard_scope(history.manager, {"cold_days": "14"})
    cold = cold_accounts(scope)
    names = [account.name for account in cold.rows]
    # Quiet Co (last email 30 days ago) and Southgate (bob's, never contacted); Acme was emailed
    # yesterday; Westwind is followed by bob but dave cannot see it.
    assert names == ["Southgate", "Quiet Co"] and cold.count == 2
    assert cold.rows[0].last_touch is None  # type: ignore[attr-defined]


def test_ticker_shows_the_team_on_visible_accounts_filtered(history: Cast) -> None:
    scope = dashboard_scope(history.manager, {})
    ticker = team_ticker(scope)
    assert ticker and all(a.author_id in (history.owner.pk, history.teammate.pk) for a in ticker)
    assert history.west_account.pk not in {a.account_id for a in ticker}
    assert {a.kind for a in team_ticker(scope, kind="email")} == {"email"}
    assert {a.author_id for a in team_ticker(scope, person="bob")} == {history.teammate.pk}


def test_csv_exports_carry_the_same_numbers(history: Cast) -> None:
    client = Client()
    client.force_login(history.manager)
    response = client.get("/dashboard/activity.csv?period=week")
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("person,posts,emails")
    alice = next(line for line in lines if line.startswith("alice,"))
    assert alice == "alice,1,2,1,1,1,1,1"
    for panel in ("cold", "pipeline", "open-work"):
        assert client.get(f"/dashboard/{panel}.csv").status_code == 200
    assert client.get("/dashboard/nothing.csv").status_code == 404


def test_csv_cells_never_run_as_formulas(cast: Cast) -> None:
    make_account(cast.admin, cast.owner, "=HYPERLINK(1)")
    client = Client()
    client.force_login(cast.manager)
    body = client.get("/dashboard/cold.csv").content.decode()
    assert "'=HYPERLINK(1)" in body


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_dashboard_costs_the_same_queries_whatever_the_data(cast: Cast) -> None:
    client = Client()
    client.force_login(cast.manager)
    # Something on the ticker first: an empty one skips its second query (no ids to read).
    post_activity(author=cast.teammate, account=cast.account, body="first")
    client.get("/dashboard/")
    few = _queries(client, "/dashboard/")
    for n in range(6):
        account = make_account(cast.admin, cast.teammate, f"More {n}")
        root = post_activity(author=cast.teammate, account=account, body="x")
        add_comment(actor=cast.owner, parent=root, body="a reply shows its thread on the ticker")
        create_task(actor=cast.teammate, account=account, subject="t")
        raise_request(actor=cast.owner, account=account, subject="r")
    assert _queries(client, "/dashboard/") == few


@pytest.mark.parametrize("who", ["owner", "teammate", "outsider", "support", "manager", "admin"])
def test_everyone_gets_a_dashboard(history: Cast, who: str) -> None:
    client = Client()
    client.force_login(getattr(history, who))
    assert client.get("/dashboard/?period=month&team=abc&cold_days=-4").status_code == 200


def test_scope_ignores_nonsense(cast: Cast) -> None:
    scope: Any = dashboard_scope(cast.manager, {"period": "year", "cold_days": "9999"})
    assert scope.period == "week" and scope.cold_days == 14


def test_filter_menus_list_each_region_and_industry_once(cast: Cast) -> None:
    from dashboard.queries import filter_choices

    for n in range(3):
        make_account(cast.admin, cast.owner, f"North {n}", region="North", industry="Retail")
    choices = filter_choices(cast.manager)
    assert choices == {"regions": ["North"], "industries": ["Retail"]}
