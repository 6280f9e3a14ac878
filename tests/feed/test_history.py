"""History that survives: tracked changes, lead conversion, merges, moving misrouted items."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from crm import actions as crm_actions
from crm.models import Account, Lead, Opportunity
from feed.actions import add_comment, follow_account, merge_accounts, post_activity
from feed.models import Activity, AuditEntry
from realtime.models import Event
from tests.conftest import Cast, client_for


def changes_on(account: Account) -> list[Activity]:
    return list(Activity.objects.filter(account=account, kind="change").order_by("id"))


def test_stage_change_is_recorded_old_to_new(cast: Cast) -> None:
    opportunity = Opportunity.objects.get(account=cast.account)
    crm_actions.update_opportunity(actor=cast.owner, opportunity=opportunity, stage="proposal")
    [change] = changes_on(cast.account)
    assert change.author == cast.owner
    assert change.opportunity_id == opportunity.pk
    assert change.details["fields"] == {
        "stage": {"label": "Stage", "old": "Prospecting", "new": "Proposal"}
    }


def test_changes_within_minutes_fold_into_one_entry(cast: Cast) -> None:
    opportunity = Opportunity.objects.get(account=cast.account)
    crm_actions.update_opportunity(actor=cast.owner, opportunity=opportunity, stage="proposal")
    crm_actions.update_opportunity(actor=cast.owner, opportunity=opportunity, stage="negotiation")
    crm_actions.update_opportunity(
        actor=cast.owner, opportunity=opportunity, amount=Decimal("65000")
    )
    [change] = changes_on(cast.account)
    assert change.details["fields"]["stage"] == {
        "label": "Stage",
        "old": "Prospecting",
        "new": "Negotiation",
    }
    assert change.details["fields"]["amount"] == {
        "label": "Amount",
        "old": "50,000.00",
        "new": "65,000.00",
    }


def test_another_person_gets_their_own_entry(cast: Cast) -> None:
    opportunity = Opportunity.objects.get(account=cast.account)
    crm_actions.update_opportunity(actor=cast.owner, opportunity=opportunity, stage="proposal")
    crm_actions.update_opportunity(
        actor=cast.teammate, opportunity=opportunity, stage="negotiation"
    )
    assert [c.author for c in changes_on(cast.account)] == [cast.owner, cast.teammate]


def test_untracked_fields_leave_no_entry(cast: Cast) -> None:
    opportunity = Opportunity.objects.get(account=cast.account)
    crm_actions.update_opportunity(actor=cast.owner, opportunity=opportunity, probability=40)
    assert changes_on(cast.account) == []


def test_account_owner_change_through_the_admin_is_tracked(cast: Cast) -> None:
    client = Client()
    client.force_login(cast.admin)
    account = cast.account
    response = client.post(
        f"/admin/crm/account/{account.pk}/change/",
        {
            "name": account.name,
            "owner": cast.teammate.pk,
            "team": account.team_id,
            "industry": "",
            "region": "",
            "record_type": "customer",
            "domains-TOTAL_FORMS": "0",
            "domains-INITIAL_FORMS": "0",
            "team_members-TOTAL_FORMS": "0",
            "team_members-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    [change] = changes_on(account)
    assert change.details["fields"]["owner"] == {
        "label": "Owner",
        "old": "Alice Moreau",
        "new": "Bob",
    }


def test_converting_a_lead_creates_account_contact_opportunity_and_history(cast: Cast) -> None:
    lead = crm_actions.create_lead(
        actor=cast.owner,
        first_name="Noor",
        last_name="Ali",
        company="Bridge Peak",
        email="noor@bridgepeak.example",
        group=Lead.Group.LIVE,
    )
    response = client_for(cast.owner).post(
        f"/api/v1/leads/{lead.pk}/convert/", {"amount": "12000"}, format="json"
    )
    assert response.status_code == 201
    account = Account.objects.get(pk=response.json()["id"])
    assert (account.name, account.owner, account.team) == ("Bridge Peak", cast.owner, cast.east)
    assert [d.domain for d in account.domains.all()] == ["bridgepeak.example"]
    contact = account.contacts.get()
    assert [e.address for e in contact.emails.all()] == ["noor@bridgepeak.example"]
    assert account.opportunities.get().amount == Decimal("12000")
    system = Activity.objects.get(account=account, kind="system")
    assert "Converted from the lead Noor Ali" in system.body
    lead.refresh_from_db()
    assert lead.converted_account == account
    again = client_for(cast.owner).post(f"/api/v1/leads/{lead.pk}/convert/", {}, format="json")
    assert again.status_code == 400


def test_someone_elses_lead_is_not_found(cast: Cast) -> None:
    lead = crm_actions.create_lead(actor=cast.owner, first_name="Z", company="Z Co")
    assert (
        client_for(cast.teammate)
        .post(f"/api/v1/leads/{lead.pk}/convert/", {}, format="json")
        .status_code
        == 404
    )


def test_dead_leads_are_kept(cast: Cast) -> None:
    lead = crm_actions.create_lead(
        actor=cast.owner,
        first_name="D",
        company="Gone",
        group=Lead.Group.DEAD,
        dead_reason="Bounced",
    )
    client = Client()
    client.force_login(cast.admin)
    assert client.post(f"/admin/crm/lead/{lead.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Lead.objects.filter(pk=lead.pk).exists()


def test_merge_moves_everything_and_says_so(cast: Cast) -> None:
    duplicate = crm_actions.create_account(
        actor=cast.admin, name="ACME Logistics Inc", owner=cast.teammate
    )
    crm_actions.create_contact(
        actor=cast.admin, account=duplicate, first_name="Li", emails=["li@acme.example"]
    )
    old_post = post_activity(author=cast.teammate, account=duplicate, body="on the duplicate")
    follow_account(user=cast.support, account=duplicate, kinds=["call"], delivery="email")
    crm_actions.grant_account_access(actor=cast.admin, account=duplicate, user=cast.outsider)
    survivor = merge_accounts(actor=cast.manager, survivor=cast.account, loser=duplicate)
    old_post.refresh_from_db()
    duplicate.refresh_from_db()
    assert old_post.account == survivor
    assert duplicate.merged_into == survivor
    assert sorted(c.first_name for c in survivor.contacts.all()) == ["Li", "Maria"]
    follow = survivor.follows.get(user=cast.support)
    assert (follow.kinds, follow.delivery) == (["call"], "email")  # choices move with it
    assert survivor.team_members.filter(user=cast.outsider).exists()
    system = Activity.objects.get(account=survivor, kind="system", subject="Accounts merged")
    assert "ACME Logistics Inc was merged into this account" in system.body
    assert Event.objects.filter(stream=f"account:{duplicate.pk}", type="account.merged").exists()


def test_merged_account_page_redirects_to_the_survivor(cast: Cast) -> None:
    duplicate = crm_actions.create_account(actor=cast.admin, name="Dup", owner=cast.owner)
    merge_accounts(actor=cast.admin, survivor=cast.account, loser=duplicate)
    client = Client()
    client.force_login(cast.owner)
    response = client.get(f"/accounts/{duplicate.pk}/")
    assert response.status_code == 302 and response["Location"] == f"/accounts/{cast.account.pk}/"
    outsider = Client()
    outsider.force_login(cast.outsider)
    assert outsider.get(f"/accounts/{duplicate.pk}/").status_code == 404


def test_reps_cannot_merge(cast: Cast) -> None:
    duplicate = crm_actions.create_account(actor=cast.admin, name="Dup", owner=cast.owner)
    with pytest.raises(PermissionDenied):
        merge_accounts(actor=cast.owner, survivor=cast.account, loser=duplicate)
    response = client_for(cast.owner).post(
        f"/api/v1/accounts/{cast.account.pk}/merge/", {"from": duplicate.pk}, format="json"
    )
    assert response.status_code == 403


def test_moving_a_thread_audits_and_rechecks_who_sees_it(cast: Cast) -> None:
    root = post_activity(author=cast.owner, account=cast.account, body="meant for Westwind")
    add_comment(actor=cast.teammate, parent=root, body="indeed")
    last = Event.objects.order_by("-id").first().pk  # type: ignore[union-attr]
    response = client_for(cast.admin).post(
        f"/api/v1/activities/{root.pk}/move/", {"account": cast.west_account.pk}, format="json"
    )
    assert response.status_code == 200
    assert set(
        Activity.objects.filter(body__in=["meant for Westwind", "indeed"]).values_list(
            "account", flat=True
        )
    ) == {cast.west_account.pk}
    assert AuditEntry.objects.get(activity=root).action == "moved"
    sent = list(Event.objects.filter(id__gt=last).values_list("stream", "type"))
    assert sent.count((f"account:{cast.account.pk}", "activity.deleted")) == 2
    assert sent.count((f"account:{cast.west_account.pk}", "activity.created")) == 3  # thread + note
    assert client_for(cast.teammate).get(f"/api/v1/activities/{root.pk}/").status_code == 404
    assert client_for(cast.outsider).get(f"/api/v1/activities/{root.pk}/").status_code == 200


def test_moving_needs_sight_of_both_accounts(cast: Cast) -> None:
    root = post_activity(author=cast.owner, account=cast.account, body="x")
    response = client_for(cast.owner).post(
        f"/api/v1/activities/{root.pk}/move/", {"account": cast.west_account.pk}, format="json"
    )
    assert response.status_code == 404
    root.refresh_from_db()
    assert root.account == cast.account


def test_close_date_change_is_tracked(cast: Cast) -> None:
    opportunity = Opportunity.objects.get(account=cast.account)
    crm_actions.update_opportunity(
        actor=cast.owner, opportunity=opportunity, close_date=dt.date(2027, 3, 1)
    )
    [change] = changes_on(cast.account)
    assert change.details["fields"]["close_date"]["new"] == "2027-03-01"
