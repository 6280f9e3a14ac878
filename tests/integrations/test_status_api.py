"""GET /api/v1/integrations/inbound-emails/<id>/: where a message stands, to who may see it."""

from __future__ import annotations

from integrations.models import InboundEmail
from tests.conftest import Cast, client_for
from tests.integrations.messages import email, ingest


def _url(inbound: InboundEmail) -> str:
    return f"/api/v1/integrations/inbound-emails/{inbound.pk}/"


def test_a_processed_message_shows_its_account_and_activity(cast: Cast) -> None:
    inbound = ingest(email())
    response = client_for(cast.owner).get(_url(inbound))
    assert response.status_code == 200
    assert response.json() == {
        "status": "processed",
        "account": cast.account.pk,
        "activity": inbound.activity_id,
        "reason": "Matched by contact.",
    }


def test_people_who_cannot_see_the_account_get_404_like_a_missing_id(cast: Cast) -> None:
    inbound = ingest(email())
    outsider = client_for(cast.outsider)
    hidden = outsider.get(_url(inbound))
    missing = outsider.get("/api/v1/integrations/inbound-emails/999999/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content == missing.content
    assert client_for(None).get(_url(inbound)).status_code == 401


def test_unmatched_mail_is_seen_by_staff_support_and_the_people_it_involves(cast: Cast) -> None:
    cast.teammate.email = "bob@tidings.example"
    cast.teammate.save()
    inbound = ingest(email(sender="x@unknown.example", to="bob@tidings.example"))
    assert inbound.status == "unmatched"
    for user, expected in [
        (cast.admin, 200),
        (cast.support, 200),
        (cast.teammate, 200),
        (cast.owner, 404),
        (cast.outsider, 404),
    ]:
        assert client_for(user).get(_url(inbound)).status_code == expected, user
