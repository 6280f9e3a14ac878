"""`manage.py seed_demo` builds the demo org of DESIGN.md section 1, and a second run changes
nothing."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from crm.models import Account, Contact, ContactEmail, Lead, Opportunity, Team, User
from feed.models import Activity, Follow


def counts() -> dict[str, int]:
    models = [Team, User, Account, Contact, ContactEmail, Opportunity, Lead, Activity, Follow]
    return {model.__name__: model.objects.count() for model in models}


@pytest.mark.django_db
def test_seed_demo_builds_the_org_once() -> None:
    call_command("seed_demo", stdout=StringIO(), stderr=StringIO())
    first = counts()
    call_command("seed_demo", stdout=StringIO(), stderr=StringIO())
    assert counts() == first

    roles = dict(User.objects.values_list("username", "role"))
    assert roles == {
        "alice": "rep",
        "bob": "rep",
        "carol": "support",
        "dave": "manager",
        "erin": "rep",
        "admin": "admin",
    }
    assert User.objects.get(username="alice").check_password("demo")
    assert Team.objects.get(name="East").managers.filter(username="dave").exists()
    assert set(Account.objects.values_list("team__name", flat=True)) == {"East", "West"}
    assert first["Account"] >= 40
    assert not Contact.objects.filter(emails__isnull=True).exists()
    addresses = [*ContactEmail.objects.values_list("address", flat=True)]
    addresses += [*Lead.objects.values_list("email", flat=True)]
    assert all(address.isascii() for address in addresses), "a demo address with a UTF-8 mailbox"
    assert set(Lead.objects.values_list("group", flat=True)) == {"live", "names", "dead"}
    kinds = set(Activity.objects.values_list("kind", flat=True))
    assert kinds == {k for k in Activity.Kind.values}
    oldest = Activity.objects.order_by("occurred_at").first()
    assert oldest is not None and oldest.occurred_at < timezone.now() - dt.timedelta(days=55)


@pytest.mark.django_db
def test_seed_demo_password_option(db: object) -> None:
    call_command("seed_demo", "--password", "s3cret-demo", stdout=StringIO(), stderr=StringIO())
    assert User.objects.get(username="bob").check_password("s3cret-demo")
