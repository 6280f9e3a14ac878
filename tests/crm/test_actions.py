"""CRM actions check who may make a change."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from crm import actions
from crm.models import Lead
from crm.visibility import AccountNotFound
from tests.conftest import Cast


def test_rep_cannot_create_an_account_for_someone_else(cast: Cast) -> None:
    with pytest.raises(PermissionDenied):
        actions.create_account(actor=cast.owner, name="Sneaky", owner=cast.teammate)


def test_rep_creates_own_account_in_own_team(cast: Cast) -> None:
    account = actions.create_account(actor=cast.owner, name="Mine", owner=cast.owner)
    assert account.team_id == cast.east.pk


def test_outsider_cannot_add_a_contact_to_a_hidden_account(cast: Cast) -> None:
    with pytest.raises(AccountNotFound):
        actions.create_contact(actor=cast.outsider, account=cast.account, first_name="X")


def test_teammate_may_add_a_contact(cast: Cast) -> None:
    contact = actions.create_contact(
        actor=cast.teammate, account=cast.account, first_name="Li", emails=["LI@Acme.example "]
    )
    assert [e.address for e in contact.emails.all()] == ["li@acme.example"]


def test_teammate_cannot_reassign_the_owner(cast: Cast) -> None:
    with pytest.raises(PermissionDenied):
        actions.update_account(actor=cast.teammate, account=cast.account, owner=cast.teammate)


def test_update_rejects_fields_outside_the_allow_list(cast: Cast) -> None:
    with pytest.raises(ValidationError):
        actions.update_account(actor=cast.owner, account=cast.account, merged_into=None)


def test_domain_belongs_to_one_account(cast: Cast) -> None:
    with pytest.raises(ValidationError):
        actions.add_account_domain(
            actor=cast.admin, account=cast.west_account, domain="ACME.example"
        )


def test_dead_lead_needs_a_reason(cast: Cast) -> None:
    with pytest.raises(ValidationError):
        actions.create_lead(actor=cast.owner, first_name="Z", company="Z", group=Lead.Group.DEAD)
