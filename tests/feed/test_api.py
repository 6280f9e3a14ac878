"""The REST API of DESIGN.md section 5, as owner, teammate, outsider and anonymous."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from feed.actions import post_activity
from feed.models import Activity
from realtime.models import Event
from tests.conftest import Cast, client_for


def _urls(cast: Cast, activity_id: int) -> list[str]:
    return [
        f"/api/v1/accounts/{cast.account.pk}/",
        f"/api/v1/accounts/{cast.account.pk}/activities/",
        f"/api/v1/activities/{activity_id}/",
    ]


@pytest.fixture
def post(cast: Cast) -> Activity:
    return post_activity(author=cast.owner, account=cast.account, body="Kick-off went well")


@pytest.mark.parametrize("who", ["owner", "teammate", "manager", "support", "admin"])
def test_people_who_can_see_the_account_read_it(cast: Cast, post: Activity, who: str) -> None:
    client = client_for(getattr(cast, who))
    for url in _urls(cast, post.pk):
        assert client.get(url).status_code == 200, url


def test_outsider_gets_the_same_404_as_for_a_missing_id(cast: Cast, post: Activity) -> None:
    client = client_for(cast.outsider)
    hidden = [client.get(url) for url in _urls(cast, post.pk)]
    missing = [
        client.get("/api/v1/accounts/999999/"),
        client.get("/api/v1/accounts/999999/activities/"),
        client.get("/api/v1/activities/999999/"),
    ]
    for got, absent in zip(hidden, missing, strict=True):
        assert got.status_code == absent.status_code == 404
        assert got.content == absent.content == b'{"detail":"Not found."}'


def test_anonymous_is_refused(cast: Cast, post: Activity) -> None:
    client = APIClient()
    for url in [*_urls(cast, post.pk), "/api/v1/accounts/"]:
        response = client.get(url)
        assert response.status_code == 401, url
    assert client.post("/api/v1/realtime/ticket/").status_code == 401


def test_account_list_shows_only_visible_accounts(cast: Cast) -> None:
    names = [a["name"] for a in client_for(cast.owner).get("/api/v1/accounts/").json()["results"]]
    assert names == ["Acme Logistics"]
    names = [a["name"] for a in client_for(cast.support).get("/api/v1/accounts/").json()["results"]]
    assert names == ["Acme Logistics", "Westwind Airlines"]


def test_account_list_searches_name_and_domain(cast: Cast) -> None:
    client = client_for(cast.admin)
    assert [a["name"] for a in client.get("/api/v1/accounts/?q=acme.exam").json()["results"]] == [
        "Acme Logistics"
    ]
    assert client.get("/api/v1/accounts/?q=nothing-like-this").json()["results"] == []


def test_account_summary_has_contacts_with_addresses_and_opportunities(cast: Cast) -> None:
    data = client_for(cast.owner).get(f"/api/v1/accounts/{cast.account.pk}/").json()
    assert data["name"] == "Acme Logistics"
    assert data["domains"] == ["acme.example"]
    assert data["contacts"][0]["name"] == "Maria Garcia"
    assert sorted(data["contacts"][0]["emails"]) == ["m.garcia@acme.example", "maria@acme.example"]
    assert data["opportunities"][0]["name"] == "Acme platform"
    assert data["opportunities"][0]["amount"] == "50000.00"


def test_posting_creates_the_activity_and_its_event(cast: Cast) -> None:
    response = client_for(cast.teammate).post(
        f"/api/v1/accounts/{cast.account.pk}/activities/",
        {"body": "  Renewal signed!  "},
        format="json",
    )
    assert response.status_code == 201
    data = response.json()
    assert data["body"] == "Renewal signed!"
    assert data["kind"] == "post"
    assert data["author"]["username"] == "bob"
    assert data["warnings"] == []
    event = Event.objects.get(stream=f"account:{cast.account.pk}")
    assert event.type == "activity.created"
    assert event.data["id"] == data["id"]


def test_mentioning_someone_who_cannot_see_the_account_warns(cast: Cast) -> None:
    response = client_for(cast.owner).post(
        f"/api/v1/accounts/{cast.account.pk}/activities/",
        {"body": "@erin and @bob, have a look"},
        format="json",
    )
    assert response.status_code == 201
    assert [w["username"] for w in response.json()["warnings"]] == ["erin"]


def test_outsider_cannot_post_and_nothing_is_written(cast: Cast) -> None:
    response = client_for(cast.outsider).post(
        f"/api/v1/accounts/{cast.account.pk}/activities/", {"body": "hi"}, format="json"
    )
    assert response.status_code == 404
    assert not Activity.objects.exists()
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"body": ""},
        {"body": "   "},
        {"body": "x" * 10_001},
        {"body": "nul \x00 byte"},
        {"body": ["list"]},
        {"body": "ok", "kind": "email"},
    ],
)
def test_bad_posts_get_a_400_with_a_message(cast: Cast, payload: dict[str, object]) -> None:
    response = client_for(cast.owner).post(
        f"/api/v1/accounts/{cast.account.pk}/activities/", payload, format="json"
    )
    assert response.status_code == 400
    assert response.json()
    assert not Activity.objects.exists()


def test_extra_fields_are_ignored(cast: Cast) -> None:
    response = client_for(cast.owner).post(
        f"/api/v1/accounts/{cast.account.pk}/activities/",
        {"body": "hello", "account": cast.west_account.pk, "author": cast.admin.pk, "id": 5},
        format="json",
    )
    assert response.status_code == 201
    activity = Activity.objects.get()
    assert (activity.account_id, activity.author_id) == (cast.account.pk, cast.owner.pk)


def test_malformed_json_is_a_400(cast: Cast) -> None:
    response = client_for(cast.owner).post(
        f"/api/v1/accounts/{cast.account.pk}/activities/",
        "{not json",
        content_type="application/json",
    )
    assert response.status_code == 400


def test_timeline_pages_by_cursor_newest_first(cast: Cast) -> None:
    for n in range(30):
        post_activity(author=cast.owner, account=cast.account, body=f"post {n}")
    client = client_for(cast.owner)
    first = client.get(f"/api/v1/accounts/{cast.account.pk}/activities/").json()
    assert [a["body"] for a in first["results"][:2]] == ["post 29", "post 28"]
    assert len(first["results"]) == 25 and first["next"]
    second = client.get(
        f"/api/v1/accounts/{cast.account.pk}/activities/?before={first['next']}"
    ).json()
    assert [a["body"] for a in second["results"]] == [f"post {n}" for n in range(4, -1, -1)]
    assert second["next"] is None


def test_timeline_filters_by_kind(cast: Cast) -> None:
    post_activity(author=cast.owner, account=cast.account, body="a post")
    client = client_for(cast.owner)
    url = f"/api/v1/accounts/{cast.account.pk}/activities/"
    assert len(client.get(url + "?kind=post").json()["results"]) == 1
    assert client.get(url + "?kind=call").json()["results"] == []
    assert client.get(url + "?kind=bogus").status_code == 400


@pytest.mark.parametrize("cursor", ["garbage", "Zm9v", "%00", "MjAyNi0wMS0wMXwx"])
def test_bad_cursor_is_a_400(cast: Cast, cursor: str) -> None:
    response = client_for(cast.owner).get(
        f"/api/v1/accounts/{cast.account.pk}/activities/?before={cursor}"
    )
    assert response.status_code == 400


def test_timeline_page_runs_a_fixed_number_of_queries(cast: Cast) -> None:
    client = client_for(cast.owner)
    url = f"/api/v1/accounts/{cast.account.pk}/activities/"
    post_activity(author=cast.owner, account=cast.account, body="one")
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for n in range(20):
        post_activity(
            author=cast.teammate if n % 2 else cast.owner, account=cast.account, body=f"{n}"
        )
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(few) == len(many) == 1  # visibility, roots, replies and people in one statement


def test_token_endpoint_answers_a_token_that_authenticates(cast: Cast) -> None:
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "pw-alice"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/accounts/").status_code == 200


def test_token_endpoint_refuses_a_wrong_password(cast: Cast) -> None:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "alice", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert "token" not in response.json()


def test_ticket_endpoint_answers_ticket_and_lifetime(cast: Cast) -> None:
    response = client_for(cast.owner).post("/api/v1/realtime/ticket/")
    assert response.status_code == 201
    body = response.json()
    assert len(body["ticket"]) >= 32
    assert body["expires_in"] == 60


def test_schema_and_docs_are_served_without_a_cdn(cast: Cast) -> None:
    client = client_for(cast.owner)
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/accounts/{account_id}/activities/" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    bundle = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert bundle in html
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
    assert client.get(bundle).status_code == 200
    assert b"SwaggerUIBundle" in client.get("/api/docs/?script=").content


def test_healthz_reports_the_database(db: object) -> None:
    response = APIClient().get("/healthz/")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_ticket_endpoint_is_rate_limited_per_user(cast: Cast) -> None:
    from django.core.cache import cache

    cache.clear()
    client = client_for(cast.owner)
    answers = [client.post("/api/v1/realtime/ticket/").status_code for _ in range(61)]
    assert answers[:60] == [201] * 60
    assert answers[60] == 429
    assert client_for(cast.teammate).post("/api/v1/realtime/ticket/").status_code == 201
    cache.clear()


def test_the_json_of_an_activity_is_the_documented_shape(cast: Cast) -> None:
    from feed.serializers import ActivitySerializer, ThreadSerializer, activity_json, thread_json

    post = post_activity(author=cast.owner, account=cast.account, body="shape")
    assert list(activity_json(post)) == ActivitySerializer.Meta.fields
    assert list(thread_json(post)) == ThreadSerializer.Meta.fields
