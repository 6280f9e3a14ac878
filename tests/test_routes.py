"""Every route, every role: status codes from one table, and no route left out of it.

Anonymous callers get the login redirect (pages) or 401 (API); a caller without access gets the
same 404 as for an id that does not exist; nothing is written by a refused call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from crm.actions import create_lead
from crm.models import Lead
from feed.actions import post_activity, raise_request
from feed.models import Activity
from integrations import actions as inbound_actions
from integrations.models import InboundEmail
from notifications.actions import notify, unsubscribe_token
from notifications.models import Notification
from realtime.models import Event
from tests.conftest import Cast

ROLES = ["anonymous", "outsider", "owner", "manager", "admin"]
# Route names deliberately outside this table, with the reason.
NOT_IN_TABLE = {
    # Django's admin has its own permission system (is_staff) and its own tests upstream.
    "admin",
}


def _ids(cast: Cast) -> dict[str, Any]:
    activity = Activity.objects.filter(account=cast.account).first() or post_activity(
        author=cast.owner, account=cast.account, body="hello"
    )
    opportunity = cast.account.opportunities.get()
    notification = Notification.objects.filter(recipient=cast.owner).first() or notify(
        recipient=cast.owner,
        kind="mention",
        activity=activity,
        actor=cast.teammate,
        source="routes",
        delivery="in_app",
    )
    assert notification is not None
    inbound = _inbound_email(cast)
    request = Activity.objects.filter(account=cast.account, kind="request").first() or (
        raise_request(actor=cast.owner, account=cast.account, subject="Cannot log in")
    )
    lead = Lead.objects.first() or create_lead(actor=cast.owner, first_name="Lee", company="Lee Co")
    return {
        "contact": cast.account.contacts.get().pk,
        "lead": lead.pk,
        "request": request.pk,
        "account": cast.account.pk,
        "activity": activity.pk,
        "opportunity": opportunity.pk,
        "notification": notification.pk,
        "unsubscribe": unsubscribe_token(cast.owner, "mention"),
        "inbound": inbound.pk,
        "attachment": inbound.attachments.get().pk,
    }


def _inbound_email(cast: Cast) -> InboundEmail:
    """A message from a contact of the account, with an attachment, processed onto it."""
    existing = InboundEmail.objects.filter(account=cast.account).first()
    if existing is not None:
        return existing
    message = EmailMessage()
    message["From"], message["To"] = "maria@acme.example", "alice@tidings.example"
    message["Subject"], message["Message-ID"] = "Quote", "<routes@mail.acme.example>"
    message.set_content("Attached.")
    message.add_attachment(b"%PDF-1.4 quote", maintype="application", subtype="pdf")
    accepted = inbound_actions.accept_inbound_email(raw=message.as_bytes())
    inbound = inbound_actions.process_inbound_email(inbound_id=accepted.inbound.pk)
    assert inbound is not None and inbound.status == "processed", inbound
    return inbound


# name -> (method, path(ids), data, {role: expected status})
R = Callable[[dict[str, Any]], str]
PAGE = {"anonymous": 302, "outsider": 200, "owner": 200, "manager": 200, "admin": 200}
SCOPED_PAGE = {"anonymous": 302, "outsider": 404, "owner": 200, "manager": 200, "admin": 200}
API = {"anonymous": 401, "outsider": 200, "owner": 200, "manager": 200, "admin": 200}
SCOPED_API = {"anonymous": 401, "outsider": 404, "owner": 200, "manager": 200, "admin": 200}
PUBLIC = dict.fromkeys(ROLES, 200)
ADMIN_API = {**dict.fromkeys(ROLES, 404), "anonymous": 401, "admin": 200}

TABLE: dict[str, tuple[str, R, dict[str, Any] | None, dict[str, int]]] = {
    "home": ("get", lambda i: "/", None, PAGE),
    "login": ("get", lambda i: "/login/", None, {**dict.fromkeys(ROLES, 302), "anonymous": 200}),
    "logout": ("post", lambda i: "/logout/", None, dict.fromkeys(ROLES, 302)),
    "account-list": ("get", lambda i: "/accounts/", None, PAGE),
    "account-detail": ("get", lambda i: f"/accounts/{i['account']}/", None, SCOPED_PAGE),
    "account-compose": (
        "post",
        lambda i: f"/accounts/{i['account']}/compose/",
        {"kind": "post", "body": "from the page"},
        {**SCOPED_PAGE, "owner": 302, "manager": 302, "admin": 302},
    ),
    "account-follow": (
        "post",
        lambda i: f"/accounts/{i['account']}/follow/",
        None,
        {**SCOPED_PAGE, "owner": 302, "manager": 302, "admin": 302},
    ),
    "activity-history": (
        "get",
        lambda i: f"/activities/{i['activity']}/history/",
        None,
        SCOPED_PAGE,
    ),
    "activity-item": (
        "get",
        lambda i: f"/activities/{i['activity']}/item/",
        None,
        SCOPED_PAGE,
    ),
    "activity-act": (
        "post",
        lambda i: f"/activities/{i['activity']}/like/",
        None,
        {**SCOPED_PAGE, "owner": 302, "manager": 302, "admin": 302},
    ),
    "api-token": (
        "post",
        lambda i: "/api/v1/auth/token/",
        {"username": "nobody", "password": "x"},
        dict.fromkeys(ROLES, 400),
    ),
    "api-realtime-ticket": (
        "post",
        lambda i: "/api/v1/realtime/ticket/",
        None,
        {**dict.fromkeys(ROLES, 201), "anonymous": 401},
    ),
    "api-accounts": ("get", lambda i: "/api/v1/accounts/", None, API),
    "api-account": ("get", lambda i: f"/api/v1/accounts/{i['account']}/", None, SCOPED_API),
    "api-opportunity": (
        "get",
        lambda i: f"/api/v1/opportunities/{i['opportunity']}/",
        None,
        SCOPED_API,
    ),
    "api-account-activities": (
        "get",
        lambda i: f"/api/v1/accounts/{i['account']}/activities/",
        None,
        SCOPED_API,
    ),
    "api-account-follow": (
        "put",
        lambda i: f"/api/v1/accounts/{i['account']}/follow/",
        None,
        SCOPED_API,
    ),
    "api-activity": ("get", lambda i: f"/api/v1/activities/{i['activity']}/", None, SCOPED_API),
    "api-account-mentions": (
        "get",
        lambda i: f"/api/v1/accounts/{i['account']}/mentions/?q=a",
        None,
        SCOPED_API,
    ),
    "api-activity-comments": (
        "post",
        lambda i: f"/api/v1/activities/{i['activity']}/comments/",
        {"body": "a reply"},
        {**SCOPED_API, "owner": 201, "manager": 201, "admin": 201},
    ),
    "api-activity-revisions": (
        "get",
        lambda i: f"/api/v1/activities/{i['activity']}/revisions/",
        None,
        SCOPED_API,
    ),
    "api-activity-reaction": (
        "put",
        lambda i: f"/api/v1/activities/{i['activity']}/reactions/like/",
        None,
        SCOPED_API,
    ),
    "api-activity-follow": (
        "put",
        lambda i: f"/api/v1/activities/{i['activity']}/follow/",
        {"muted": True},
        SCOPED_API,
    ),
    "api-account-merge": (
        "post",
        lambda i: f"/api/v1/accounts/{i['account']}/merge/",
        {"from": 999_999},
        {**SCOPED_API, "outsider": 404, "owner": 404, "manager": 404, "admin": 404},
    ),
    "api-activity-move": (
        "post",
        lambda i: f"/api/v1/activities/{i['activity']}/move/",
        {"account": 999_999},
        {**SCOPED_API, "owner": 404, "manager": 404, "admin": 404},
    ),
    "api-lead-convert": (
        "post",
        lambda i: "/api/v1/leads/999999/convert/",
        None,
        {**dict.fromkeys(ROLES, 404), "anonymous": 401},
    ),
    "api-feed": ("get", lambda i: "/api/v1/feed/", None, API),
    "api-privacy-contact-export": (
        "get",
        lambda i: f"/api/v1/privacy/contacts/{i['contact']}/export/",
        None,
        ADMIN_API,
    ),
    # Without {"confirm": true} an administrator is refused too (400), and nothing is erased.
    "api-privacy-contact-erase": (
        "post",
        lambda i: f"/api/v1/privacy/contacts/{i['contact']}/erase/",
        None,
        {**ADMIN_API, "admin": 400},
    ),
    "api-privacy-lead-export": (
        "get",
        lambda i: f"/api/v1/privacy/leads/{i['lead']}/export/",
        None,
        ADMIN_API,
    ),
    "api-privacy-lead-erase": (
        "post",
        lambda i: f"/api/v1/privacy/leads/{i['lead']}/erase/",
        {"confirm": True},
        ADMIN_API,
    ),
    "api-account-logging-address": (
        "get",
        lambda i: f"/api/v1/accounts/{i['account']}/logging-address/",
        None,
        SCOPED_API,
    ),
    "api-account-meetings": (
        "post",
        lambda i: f"/api/v1/accounts/{i['account']}/meetings/",
        {"subject": "Quarterly review", "starts_at": "2026-11-20T10:00:00Z"},
        {**SCOPED_API, "owner": 201, "manager": 201, "admin": 201},
    ),
    "api-inbound-email": (
        "get",
        lambda i: f"/api/v1/integrations/inbound-emails/{i['inbound']}/",
        None,
        SCOPED_API,
    ),
    # Authenticates itself with an HMAC of the body, whoever is logged in: unsigned is 403.
    "email-inbound-raw": (
        "post",
        lambda i: "/integrations/email/inbound/raw/",
        None,
        dict.fromkeys(ROLES, 403),
    ),
    # Provider webhooks authenticate themselves (basic auth, signatures); a session is nothing.
    "email-mailgun": (
        "post",
        lambda i: "/integrations/email/inbound/mailgun/",
        None,
        dict.fromkeys(ROLES, 403),
    ),
    "email-postmark": (
        "post",
        lambda i: "/integrations/email/inbound/postmark/",
        None,
        dict.fromkeys(ROLES, 403),
    ),
    "email-sendgrid": (
        "post",
        lambda i: "/integrations/email/inbound/sendgrid/",
        None,
        dict.fromkeys(ROLES, 403),
    ),
    # In tests no provider secret is set: refused whoever calls (SNS's 401 challenge needs one).
    "email-amazon-ses": (
        "post",
        lambda i: "/integrations/email/inbound/amazon-ses/",
        None,
        dict.fromkeys(ROLES, 403),
    ),
    "email-triage": ("get", lambda i: "/integrations/email/triage/", None, PAGE),
    "email-triage-rematch": (
        "post",
        lambda i: "/integrations/email/triage/rematch/",
        None,
        dict.fromkeys(ROLES, 302),
    ),
    # The message is already on the timeline: refused with a message, back to the page.
    "email-triage-assign": (
        "post",
        lambda i: f"/integrations/email/triage/{i['inbound']}/assign/",
        None,
        {**SCOPED_PAGE, "owner": 302, "manager": 302, "admin": 302},
    ),
    "email-triage-rerun": (
        "post",
        lambda i: f"/integrations/email/triage/{i['inbound']}/rerun/",
        None,
        {**SCOPED_PAGE, "owner": 302, "manager": 302, "admin": 302},
    ),
    "email-attachment": (
        "get",
        lambda i: f"/integrations/email/attachments/{i['attachment']}/",
        None,
        SCOPED_PAGE,
    ),
    "api-search": ("get", lambda i: "/api/v1/search/?q=acme", None, API),
    "api-schema": ("get", lambda i: "/api/schema/", None, PUBLIC),
    "api-docs": ("get", lambda i: "/api/docs/", None, PUBLIC),
    "healthz": ("get", lambda i: "/healthz/", None, PUBLIC),
    "notification-inbox": ("get", lambda i: "/notifications/", None, PAGE),
    "notification-read-all": (
        "post",
        lambda i: "/notifications/read/",
        None,
        {**dict.fromkeys(ROLES, 302)},
    ),
    "notification-open": (
        "post",
        lambda i: f"/notifications/{i['notification']}/open/",
        None,
        # Only its recipient (the owner) may open it; to anyone else it does not exist.
        {**SCOPED_PAGE, "owner": 302, "manager": 404, "admin": 404},
    ),
    "notification-settings": ("get", lambda i: "/notifications/settings/", None, PAGE),
    "notification-unsubscribe": (
        "get",
        lambda i: f"/notifications/unsubscribe/{i['unsubscribe']}/",
        None,
        PUBLIC,
    ),
    "api-notifications": ("get", lambda i: "/api/v1/notifications/", None, API),
    "api-notifications-read": (
        "post",
        lambda i: "/api/v1/notifications/read/",
        {"all": True},
        API,
    ),
    "api-notification-preferences": (
        "get",
        lambda i: "/api/v1/notifications/preferences/",
        None,
        API,
    ),
    "request-list": ("get", lambda i: "/requests/", None, PAGE),
    "request-detail": ("get", lambda i: f"/requests/{i['request']}/", None, SCOPED_PAGE),
    "request-work": (
        "post",
        lambda i: f"/requests/{i['request']}/claim/",
        None,
        # The owner (a rep, its author) is refused with a message on the page it returns to.
        {**SCOPED_PAGE, "owner": 302, "manager": 302, "admin": 302},
    ),
    # Everyone has a dashboard: managers their teams', admins any team's, others their own.
    "dashboard": ("get", lambda i: "/dashboard/", None, PAGE),
    "dashboard-export": ("get", lambda i: "/dashboard/activity.csv", None, PAGE),
    "dashboard-panels": ("get", lambda i: "/dashboard/panels/", None, PAGE),
}


def _route_names(resolver: URLResolver, prefix: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                names.add("admin")
                continue
            names |= _route_names(pattern)
        elif isinstance(pattern, URLPattern):
            assert pattern.name, f"unnamed URL pattern {pattern.pattern}"
            names.add(pattern.name)
    return names


def test_every_route_is_in_the_table() -> None:
    assert _route_names(get_resolver()) == set(TABLE) | NOT_IN_TABLE


def _client(cast: Cast, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(getattr(cast, role))
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(TABLE))
def test_route_answers_each_role(cast: Cast, name: str, role: str) -> None:
    method, path, data, expected = TABLE[name]
    ids = _ids(cast)
    writes_before = (Activity.objects.count(), Event.objects.count())
    client = _client(cast, role)
    if name.startswith("api-") and method != "get":
        response = getattr(client, method)(
            path(ids), json.dumps(data or {}), content_type="application/json"
        )
    else:
        response = getattr(client, method)(path(ids), data or {})
    assert response.status_code == expected[role], (name, role, response.content[:200])
    if response.get("Content-Type", "").startswith("text/html"):
        # A multi-line {# #} is not a Django comment: it would be printed on the page.
        for syntax in (b"{#", b"#}", b"{%", b"%}", b"{{", b"}}"):
            assert syntax not in response.content, (name, role, syntax)
    if (name == "account-compose" and role in ("anonymous", "outsider")) or (
        name.startswith("api-privacy") and role != "admin"
    ):
        assert (Activity.objects.count(), Event.objects.count()) == writes_before
    if role == "anonymous" and response.status_code == 302 and name not in ("logout",):
        assert response["Location"].startswith("/login/")
