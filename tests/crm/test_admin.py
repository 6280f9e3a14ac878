"""The Django admin shows every CRM record and saves through crm.actions."""

from __future__ import annotations

import pytest
from django.test import Client

from crm.models import Account, AccountDomain, Contact, Lead
from tests.conftest import Cast


@pytest.fixture
def admin_client(cast: Cast) -> Client:
    client = Client()
    client.force_login(cast.admin)
    return client


@pytest.mark.parametrize("model", ["user", "team", "account", "contact", "opportunity", "lead"])
def test_admin_lists_and_opens_every_record(admin_client: Client, cast: Cast, model: str) -> None:
    assert admin_client.get(f"/admin/crm/{model}/").status_code == 200
    assert admin_client.get(f"/admin/crm/{model}/add/").status_code == 200


def test_admin_account_page_opens(admin_client: Client, cast: Cast) -> None:
    assert admin_client.get(f"/admin/crm/account/{cast.account.pk}/change/").status_code == 200


def test_admin_adds_a_domain_through_the_action(admin_client: Client, cast: Cast) -> None:
    account = cast.west_account
    response = admin_client.post(
        f"/admin/crm/account/{account.pk}/change/",
        {
            "name": account.name,
            "owner": account.owner_id,
            "team": account.team_id,
            "industry": "",
            "region": "",
            "record_type": "customer",
            "domains-TOTAL_FORMS": "1",
            "domains-INITIAL_FORMS": "0",
            "domains-0-domain": "WWW.Westwind.Example",
            "team_members-TOTAL_FORMS": "1",
            "team_members-INITIAL_FORMS": "0",
            "team_members-0-user": cast.teammate.pk,
            "team_members-0-role": "Solutions",
        },
    )
    assert response.status_code == 302, response.content[:500]
    # The action normalises domains; a plain model save would have kept the raw text.
    assert list(AccountDomain.objects.filter(account=account).values_list("domain", flat=True)) == [
        "westwind.example"
    ]
    assert account.team_members.get().user == cast.teammate


def test_admin_creates_a_lead_through_the_action(admin_client: Client, cast: Cast) -> None:
    response = admin_client.post(
        "/admin/crm/lead/add/",
        {
            "first_name": "Noor",
            "company": "Bridge",
            "email": "NOOR@Bridge.Example",
            "group": "live",
        },
    )
    assert response.status_code == 302
    assert Lead.objects.get().email == "noor@bridge.example"


def test_admin_cannot_delete_accounts_or_leads(admin_client: Client, cast: Cast) -> None:
    response = admin_client.get(f"/admin/crm/account/{cast.account.pk}/delete/")
    assert response.status_code == 403
    assert Account.objects.filter(pk=cast.account.pk).exists()


def test_admin_edits_a_contact_email_through_the_action(admin_client: Client, cast: Cast) -> None:
    contact = Contact.objects.get(account=cast.account)
    emails = list(contact.emails.order_by("pk"))
    data = {
        "account": cast.account.pk,
        "first_name": "Maria",
        "last_name": "Garcia",
        "title": "CFO",
        "phone": "",
        "emails-TOTAL_FORMS": "2",
        "emails-INITIAL_FORMS": "2",
    }
    for index, email in enumerate(emails):
        data[f"emails-{index}-id"] = email.pk
        data[f"emails-{index}-contact"] = contact.pk
        data[f"emails-{index}-address"] = email.address
    data["emails-1-address"] = "Maria.G@Acme.Example"
    response = admin_client.post(f"/admin/crm/contact/{contact.pk}/change/", data)
    assert response.status_code == 302, response.content[:800]
    contact.refresh_from_db()
    assert contact.title == "CFO"
    assert sorted(contact.emails.values_list("address", flat=True)) == sorted(
        [emails[0].address, "maria.g@acme.example"]
    )
