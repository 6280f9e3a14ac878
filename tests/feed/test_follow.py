"""Following accounts: the API, quiet auto-follow, and the event that updates home streams."""

from __future__ import annotations

from crm import actions as crm_actions
from feed.events import FOLLOW_CHANGED
from feed.queries import followed_account_ids
from realtime.models import Event
from tests.conftest import Cast, client_for


def test_owner_follows_own_account_without_asking(cast: Cast) -> None:
    assert followed_account_ids(cast.owner) == {cast.account.pk}
    assert followed_account_ids(cast.teammate) == set()


def test_account_team_member_follows_quietly(cast: Cast) -> None:
    crm_actions.grant_account_access(actor=cast.admin, account=cast.account, user=cast.outsider)
    assert cast.account.pk in followed_account_ids(cast.outsider)


def test_put_follows_and_delete_unfollows(cast: Cast) -> None:
    client = client_for(cast.teammate)
    url = f"/api/v1/accounts/{cast.account.pk}/follow/"
    answer = client.put(url).json()
    assert answer == {"account": cast.account.pk, "following": True, "kinds": [], "delivery": ""}
    assert client.put(url).status_code == 200  # idempotent
    assert followed_account_ids(cast.teammate) == {cast.account.pk}
    assert client.delete(url).json()["following"] is False
    assert client.delete(url).status_code == 200
    assert followed_account_ids(cast.teammate) == set()


def test_follow_carries_how_news_of_the_account_reaches_you(cast: Cast) -> None:
    client = client_for(cast.teammate)
    url = f"/api/v1/accounts/{cast.account.pk}/follow/"
    answer = client.put(url, {"delivery": "email", "kinds": ["call"]}, format="json").json()
    assert (answer["delivery"], answer["kinds"]) == ("email", ["call"])
    assert client.put(url, {"kinds": ["post"]}, format="json").json()["delivery"] == "email"
    assert client.put(url, {"delivery": ""}, format="json").json()["delivery"] == ""


def test_unknown_delivery_of_a_follow_is_refused(cast: Cast) -> None:
    client = client_for(cast.teammate)
    url = f"/api/v1/accounts/{cast.account.pk}/follow/"
    for bad in ("pigeon", 3, ["email"]):
        answer = client.put(url, {"delivery": bad}, format="json")
        assert answer.status_code == 400, bad
        assert "delivery" in answer.json()
    assert followed_account_ids(cast.teammate) == set()


def test_each_real_change_announces_itself_once(cast: Cast) -> None:
    client = client_for(cast.teammate)
    url = f"/api/v1/accounts/{cast.account.pk}/follow/"
    client.put(url)
    client.put(url)
    client.delete(url)
    client.delete(url)
    changes = Event.objects.filter(stream=f"user:{cast.teammate.pk}", type=FOLLOW_CHANGED)
    assert [e.data["following"] for e in changes.order_by("id")] == [True, False]


def test_owner_still_follows_after_delete(cast: Cast) -> None:
    response = client_for(cast.owner).delete(f"/api/v1/accounts/{cast.account.pk}/follow/")
    assert response.json()["following"] is True


def test_outsider_cannot_follow_a_hidden_account(cast: Cast) -> None:
    response = client_for(cast.outsider).put(f"/api/v1/accounts/{cast.account.pk}/follow/")
    assert response.status_code == 404
    assert followed_account_ids(cast.outsider) == {cast.west_account.pk}


def test_follows_of_accounts_no_longer_visible_are_ignored(cast: Cast) -> None:
    client_for(cast.teammate).put(f"/api/v1/accounts/{cast.account.pk}/follow/")
    cast.teammate.team = cast.west
    cast.teammate.save(update_fields=["team"])
    assert cast.account.pk not in followed_account_ids(cast.teammate)


def test_follow_preferences_from_the_account_page(cast: Cast) -> None:
    from django.test import Client

    from feed.models import Follow

    browser = Client()
    browser.force_login(cast.owner)
    page = browser.get(f"/accounts/{cast.account.pk}/").content.decode()
    assert "What you follow here, and how" in page  # the owner follows quietly already
    form = {"preferences": "yes", "kinds": ["call", "meeting"], "delivery": "email"}
    assert browser.post(f"/accounts/{cast.account.pk}/follow/", form).status_code == 302
    follow = Follow.objects.get(user=cast.owner, account=cast.account)
    assert (follow.kinds, follow.delivery) == (["call", "meeting"], "email")
    bad = browser.post(
        f"/accounts/{cast.account.pk}/follow/", {**form, "delivery": "pigeon"}, follow=True
    )
    assert "Unknown delivery" in bad.content.decode()
    assert Follow.objects.get(user=cast.owner, account=cast.account).delivery == "email"
