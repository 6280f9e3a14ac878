"""The cast every test uses, and factories for records.

- `owner`     alice, rep in East, owns `account`
- `teammate`  bob, rep in East (sees East accounts)
- `outsider`  erin, rep in West (sees West accounts and her grants only)
- `support`   carol (sees every account)
- `manager`   dave, manages East
- `admin`     an administrator
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from rest_framework.test import APIClient

from crm import actions
from crm.models import Account, Team, User


@dataclass
class Cast:
    east: Team
    west: Team
    owner: User
    teammate: User
    outsider: User
    support: User
    manager: User
    admin: User
    account: Account
    west_account: Account


_HASHES: dict[str, str] = {}


def make_user(username: str, role: str = "rep", team: Team | None = None, **extra: Any) -> User:
    """A user whose password is "pw-<username>".

    The hash is computed once per name for the whole run: the real hasher is slow on purpose, and
    the servers that tests start in subprocesses must accept these passwords.
    """
    if username not in _HASHES:
        _HASHES[username] = make_password("pw-" + username)
    return User.objects.create(
        username=username, password=_HASHES[username], role=role, team=team, **extra
    )


def make_account(actor: User, owner: User, name: str = "Acme", **extra: Any) -> Account:
    return actions.create_account(actor=actor, name=name, owner=owner, **extra)


@pytest.fixture
def cast(db: Any) -> Cast:
    east = Team.objects.create(name="East")
    west = Team.objects.create(name="West")
    admin = make_user("admin", role="admin", is_staff=True, is_superuser=True)
    owner = make_user("alice", team=east, first_name="Alice", last_name="Moreau")
    teammate = make_user("bob", team=east, first_name="Bob")
    outsider = make_user("erin", team=west)
    support = make_user("carol", role="support")
    manager = make_user("dave", role="manager", team=None)
    east.managers.add(manager)
    account = make_account(admin, owner, "Acme Logistics", domains=["acme.example"])
    actions.create_contact(
        actor=admin,
        account=account,
        first_name="Maria",
        last_name="Garcia",
        emails=["maria@acme.example", "m.garcia@acme.example"],
    )
    actions.create_opportunity(
        actor=admin,
        account=account,
        name="Acme platform",
        close_date=dt.date(2027, 1, 31),
        amount=50_000,
    )
    west_account = make_account(admin, outsider, "Westwind Airlines")
    return Cast(
        east, west, owner, teammate, outsider, support, manager, admin, account, west_account
    )


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    """Rate-limit counters live in the cache; no test inherits another's."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _no_known_home_feeds() -> Any:
    """Who is known to follow many accounts (`feed.queries`) is per process; no test inherits
    another's guess."""
    from feed import queries

    queries._MANY_FOLLOWS.clear()
    yield
    queries._MANY_FOLLOWS.clear()


def pytest_configure(config: pytest.Config) -> None:
    """Tasks the code under test queues go to an in-memory broker nobody reads: a test runs
    the work itself (`work_happenings`, the jobs with a given time), and the service tests run a
    real worker on Redis in its own process (tests/service/)."""
    from config.celery import app

    app.conf.broker_url = "memory://"
    app.conf.broker_transport_options = {}


def work_happenings() -> int:
    """Run what a Celery worker would for every happening waiting: tests under the `db` fixture
    never commit, so the task queued on commit never runs by itself."""
    from notifications.actions import notify_happening
    from notifications.models import Happening

    return sum(
        notify_happening(pk) for pk in Happening.objects.order_by("id").values_list("pk", flat=True)
    )
