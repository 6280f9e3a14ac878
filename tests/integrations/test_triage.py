"""The triage page: unmatched mail, assigned by a person, rules taught, messages re-run."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from crm import actions as crm_actions
from feed.models import Activity
from integrations import actions
from integrations.models import InboundAddressRule, InboundEmail
from tests.conftest import Cast
from tests.integrations.messages import email, ingest

Status = InboundEmail.Status


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_lists_unmatched_mail_with_csrf_protected_forms(cast: Cast) -> None:
    ingest(email(sender="Pat <pat@newco.example>", subject="Pricing for 40 seats"))
    response = _client(cast.support).get("/integrations/email/triage/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Pricing for 40 seats" in page and "pat@newco.example" in page
    assert "csrfmiddlewaretoken" in page
    assert "<script>" not in page  # the CSP forbids inline script
    # A rep sees only the unmatched mail that involves their own address.
    assert (
        "Pricing for 40 seats"
        not in _client(cast.outsider).get("/integrations/email/triage/").content.decode()
    )


def test_csrf_is_required_to_assign(cast: Cast) -> None:
    inbound = ingest(email(sender="pat@newco.example"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.support)
    response = client.post(
        f"/integrations/email/triage/{inbound.pk}/assign/", {"account": cast.account.pk}
    )
    assert response.status_code == 403
    inbound.refresh_from_db()
    assert inbound.status == Status.UNMATCHED


def test_assigning_puts_the_mail_on_the_account_and_can_teach_the_domain(cast: Cast) -> None:
    first = ingest(email(sender="pat@newco.example", subject="one"))
    waiting = ingest(email(sender="sam@newco.example", subject="two"))
    response = _client(cast.support).post(
        f"/integrations/email/triage/{first.pk}/assign/",
        {"account": cast.account.pk, "teach": "domain"},
    )
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.status == Status.PROCESSED and first.matched_by == "triage"
    assert first.activity is not None and first.activity.account == cast.account
    assert InboundAddressRule.objects.get().pattern == "newco.example"
    # The other unmatched message from that domain was queued again; the worker places it.
    waiting.refresh_from_db()
    assert waiting.status == Status.QUEUED
    actions.process_inbound_email(inbound_id=waiting.pk)
    waiting.refresh_from_db()
    assert waiting.status == Status.PROCESSED and waiting.matched_by == "rule"
    later = ingest(email(sender="kim@newco.example", subject="three"))
    assert later.account == cast.account and later.matched_by == "rule"


def test_webmail_domains_cannot_be_taught(cast: Cast) -> None:
    inbound = ingest(email(sender="pat@gmail.com"))
    _client(cast.support).post(
        f"/integrations/email/triage/{inbound.pk}/assign/",
        {"account": cast.account.pk, "teach": "domain"},
    )
    inbound.refresh_from_db()
    assert inbound.status == Status.UNMATCHED
    assert not InboundAddressRule.objects.exists()


def test_assigning_to_an_account_one_cannot_see_is_refused(cast: Cast) -> None:
    cast.owner.email = "alice@tidings.example"
    cast.owner.save()
    inbound = ingest(email(sender="pat@newco.example", to="alice@tidings.example"))
    _client(cast.owner).post(
        f"/integrations/email/triage/{inbound.pk}/assign/", {"account": cast.west_account.pk}
    )
    inbound.refresh_from_db()
    assert inbound.status == Status.UNMATCHED
    assert not Activity.objects.filter(account=cast.west_account, kind="email").exists()


def test_a_new_contact_address_is_offered_for_rematching(cast: Cast) -> None:
    inbound = ingest(email(sender="Lee <lee@lee-consulting.example>", subject="hello"))
    assert inbound.status == Status.UNMATCHED
    support = _client(cast.support)
    assert "Re-match" not in support.get("/integrations/email/triage/").content.decode()
    crm_actions.create_contact(
        actor=cast.owner,
        account=cast.account,
        first_name="Lee",
        emails=["lee@lee-consulting.example"],
    )
    page = support.get("/integrations/email/triage/").content.decode()
    assert "Now a contact:" in page and "Re-match 1 message" in page
    support.post("/integrations/email/triage/rematch/")
    actions.process_inbound_email(inbound_id=inbound.pk)
    inbound.refresh_from_db()
    assert inbound.status == Status.PROCESSED and inbound.account == cast.account


def test_rerun_refuses_a_message_already_on_a_timeline(cast: Cast) -> None:
    inbound = ingest(email())
    _client(cast.owner).post(f"/integrations/email/triage/{inbound.pk}/rerun/")
    inbound.refresh_from_db()
    assert inbound.status == Status.PROCESSED
    assert Activity.objects.filter(kind="email").count() == 1


def test_the_admin_reruns_failed_messages(cast: Cast) -> None:
    inbound = ingest(b"\r\n\r\nno headers at all")
    assert inbound.status == Status.FAILED
    admin = _client(cast.admin)
    response = admin.post(
        "/admin/integrations/inboundemail/",
        {"action": "rerun", "_selected_action": [inbound.pk]},
    )
    assert response.status_code == 302
    inbound.refresh_from_db()
    assert inbound.status == Status.QUEUED and inbound.attempts == 0
    assert admin.get(f"/admin/integrations/inboundemail/{inbound.pk}/change/").status_code == 200


def test_the_page_counts_the_noise_kept_out_of_the_feed(cast: Cast) -> None:
    ingest(email(headers={"Auto-Submitted": "auto-replied"}))
    ingest(email(sender="MAILER-DAEMON@mx.acme.example", subject="Undelivered"))
    page = _client(cast.support).get("/integrations/email/triage/").content.decode()
    assert "Kept out of the feed in the last 7 days: 2" in page


def test_a_rep_cannot_route_a_whole_domain(cast: Cast) -> None:
    with pytest.raises(ValidationError, match="support"):
        actions.teach_rule(
            actor=cast.outsider,
            account=cast.west_account,
            address="x@newco.example",
            scope="domain",
        )
    assert not InboundAddressRule.objects.exists()


def test_the_page_offers_the_domain_rule_only_to_those_who_may_teach_it(cast: Cast) -> None:
    cast.owner.email = "alice@tidings.example"
    cast.owner.save(update_fields=["email"])
    ingest(email(sender="Pat <pat@newco.example>", subject="Pricing for 40 seats"))
    rep_page = _client(cast.owner).get("/integrations/email/triage/").content.decode()
    assert "Pricing for 40 seats" in rep_page  # the mail is addressed to alice
    assert 'value="address"' in rep_page
    assert 'value="domain"' not in rep_page
    support_page = _client(cast.support).get("/integrations/email/triage/").content.decode()
    assert 'value="domain"' in support_page


def test_nobody_takes_over_mail_of_an_account_they_cannot_see(cast: Cast) -> None:
    # maria@acme.example is a contact of Acme (East); erin (West) cannot see Acme.
    with pytest.raises(ValidationError):
        actions.teach_rule(
            actor=cast.outsider,
            account=cast.west_account,
            address="maria@acme.example",
            scope="address",
        )
    actions.teach_rule(
        actor=cast.support, account=cast.account, address="pat@newco.example", scope="address"
    )
    with pytest.raises(ValidationError):  # a rule on Acme stays Acme's
        actions.teach_rule(
            actor=cast.outsider,
            account=cast.west_account,
            address="pat@newco.example",
            scope="address",
        )
    assert InboundAddressRule.objects.get().account == cast.account
