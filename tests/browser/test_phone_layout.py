"""Reps work in the field: every page fits a phone's width (390 px) without scrolling sideways.

Wide tables may scroll inside their own card; the page itself must not. A composer's tabs or a
dashboard table that sets the width of its column would push the whole page wider than the screen.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, ViewportSize

from feed.actions import create_task, post_activity
from feed.actions.requests import raise_request
from tests.browser.conftest import LiveServer
from tests.browser.test_live_post import log_in
from tests.conftest import Cast

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = ViewportSize(width=390, height=844)


def _pages(cast: Cast) -> list[str]:
    return [
        "/",
        "/accounts/",
        f"/accounts/{cast.account.pk}/",
        "/notifications/",
        "/notifications/settings/",
        "/requests/",
        "/dashboard/",
        "/integrations/email/triage/",
    ]


@pytest.fixture
def history(cast: Cast) -> None:
    """Enough rows that the queue and the dashboard's tables have something to lay out."""
    post_activity(
        author=cast.owner,
        account=cast.account,
        body="Long words stay inside the page: " + "Donaudampfschifffahrt" * 3,
    )
    create_task(
        actor=cast.owner,
        account=cast.account,
        subject="Send the revised quote to Maria Garcia before the board meets",
        due_at=timezone.now() - dt.timedelta(days=2),
    )
    raise_request(
        actor=cast.teammate,
        account=cast.account,
        subject="Invoices show the wrong VAT number for the Hamburg entity",
        priority="urgent",
    )


@pytest.mark.parametrize("username", ["alice", "dave", "carol"])
def test_every_page_fits_a_phone(
    cast: Cast,
    history: None,  # before `chromium`: the ORM refuses to run beside Playwright's event loop
    live_server_daphne: LiveServer,
    chromium: Browser,
    artifacts: Path,
    username: str,
) -> None:
    page = log_in(chromium, live_server_daphne, username)
    page.set_viewport_size(PHONE)
    too_wide = {}
    for path in _pages(cast):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            name = path.strip("/").replace("/", "-") or "home"
            page.screenshot(path=str(artifacts / f"phone-{username}-{name}.png"), full_page=True)
            too_wide[path] = width
    page.context.close()
    assert too_wide == {}, f"pages wider than {PHONE['width']} px for {username}: {too_wide}"
