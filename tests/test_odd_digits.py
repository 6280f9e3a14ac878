"""Query strings with characters that Python calls digits but `int()` refuses ("²", "①") are
nonsense to ignore or a clear 400, never a 500."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import Cast

ODD = ["²", "①", "٣x"]


def _as(cast: Cast, role: str) -> Client:
    client = Client()
    client.force_login(getattr(cast, role))
    return client


@pytest.mark.parametrize("odd", ODD)
def test_dashboard_ignores_an_odd_number_of_days(cast: Cast, odd: str) -> None:
    manager = _as(cast, "manager")
    for path in ("/dashboard/", "/dashboard/panels/"):
        assert manager.get(path, {"cold_days": odd}).status_code == 200, path


@pytest.mark.parametrize("odd", ODD)
def test_inbox_cursor_of_odd_digits_is_a_400(cast: Cast, odd: str) -> None:
    response = _as(cast, "owner").get("/api/v1/notifications/", {"before": odd})
    assert response.status_code == 400
    assert "before" in response.json()


@pytest.mark.parametrize("odd", ODD)
def test_queue_filters_ignore_odd_digits(cast: Cast, odd: str) -> None:
    support = _as(cast, "support")
    assert support.get("/requests/", {"account": odd, "assignee": odd}).status_code == 200
