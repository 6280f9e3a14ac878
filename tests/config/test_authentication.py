"""REST API tokens (config/authentication.py): DRF's answers, in one hand-written statement."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authentication import TokenAuthentication as DrfTokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient

from config.authentication import TokenAuthentication
from tests.conftest import Cast


def test_a_token_authenticates_its_user_in_one_statement(cast: Cast) -> None:
    token = Token.objects.create(user=cast.owner)
    with CaptureQueriesContext(connection) as queries:
        user, found = TokenAuthentication().authenticate_credentials(token.key)
        names = (user.username, user.team_id, found.user.username, found.created)
    assert len(queries) == 1
    assert (user.pk, found.pk) == (cast.owner.pk, token.key)
    assert names == (cast.owner.username, cast.owner.team_id, cast.owner.username, token.created)
    drf_user, drf_token = DrfTokenAuthentication().authenticate_credentials(token.key)
    assert (drf_user, drf_token) == (user, found)


@pytest.mark.parametrize("is_active", [True, False])
def test_api_answers_with_drfs_messages(cast: Cast, is_active: bool) -> None:
    token = Token.objects.create(user=cast.owner)
    cast.owner.is_active = is_active
    cast.owner.save(update_fields=["is_active"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.get("/api/v1/accounts/")
    if is_active:
        assert response.status_code == 200
        return
    assert response.status_code == 401
    assert response.json() == {"detail": "User inactive or deleted."}


def test_an_unknown_token_is_refused_as_drf_refuses_it(cast: Cast) -> None:
    with pytest.raises(AuthenticationFailed) as ours:
        TokenAuthentication().authenticate_credentials("0" * 40)
    with pytest.raises(AuthenticationFailed) as drfs:
        DrfTokenAuthentication().authenticate_credentials("0" * 40)
    assert str(ours.value.detail) == str(drfs.value.detail) == "Invalid token."
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get("/api/v1/accounts/").status_code == 401


def test_the_api_authenticates_tokens_with_it() -> None:
    from rest_framework.settings import api_settings

    assert TokenAuthentication in api_settings.DEFAULT_AUTHENTICATION_CLASSES
    assert DrfTokenAuthentication not in api_settings.DEFAULT_AUTHENTICATION_CLASSES
