"""The unread badge in Chromium: a mention lights it up live, reading in one tab clears the
others. Runs daphne and a real Celery worker (the happening's task) in their own processes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests import servers
from tests.browser.conftest import LiveServer, _server_env
from tests.browser.test_live_post import WAIT_MS, log_in
from tests.conftest import Cast

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stack(transactional_db: None, tmp_path: Path) -> Iterator[LiveServer]:
    """daphne and a Celery worker sharing one environment (database, broker, var folder)."""
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    env = _server_env(var_dir)
    servers.purge_broker(env)
    worker = servers.start_celery("worker", env, tmp_path / "logs")
    try:
        with servers.running_web(env, tmp_path) as server:
            yield server
    finally:
        worker.stop()
        print(worker.log_tail(20))


def test_badge_lights_up_live_and_clears_in_every_tab(
    cast: Cast, stack: LiveServer, chromium: Browser, artifacts: Path
) -> None:
    alice = log_in(chromium, stack, "alice")
    bob = log_in(chromium, stack, "bob")
    badge = alice.locator("#unread-badge")
    try:
        alice.goto("/")
        expect(alice.locator("#live-status")).to_have_text("Live")
        expect(badge).to_be_hidden()
        marker = alice.evaluate("window.__marker = 'still here'")

        bob.goto(f"/accounts/{cast.account.pk}/")
        bob.locator("#composer-body").fill("@alice can you send Maria the order form?")
        bob.get_by_role("button", name="Post", exact=True).click()
        expect(bob.locator("#timeline")).to_contain_text("order form")

        # The home feed shows the post live, naming its account as a rendered item does.
        live_item = alice.locator("#timeline > li", has_text="order form")
        expect(live_item).to_have_count(1)
        expect(live_item.get_by_role("link", name="Acme Logistics")).to_be_visible()

        # The worker turns the mention into a notification; the socket brings the badge.
        expect(badge).to_be_visible(timeout=WAIT_MS)
        expect(badge).to_have_text("1")
        assert alice.evaluate("window.__marker") == marker, "the page reloaded"
        alice.screenshot(path=artifacts / "alice-badge.png")

        # A second tab: the inbox lists it; reading it there clears the first tab's badge.
        inbox = alice.context.new_page()
        inbox.goto("/notifications/")
        item = inbox.locator(".inbox-item.unread")
        expect(item).to_have_count(1)
        expect(item).to_contain_text("Bob mentioned you on Acme Logistics")
        inbox.screenshot(path=artifacts / "alice-inbox.png", full_page=True)
        expect(inbox.locator("#live-status")).to_have_text("Live")
        inbox.get_by_role("button", name="Mark all read").click()
        expect(inbox.locator(".inbox-item.unread")).to_have_count(0)
        expect(badge).to_be_hidden(timeout=WAIT_MS)
        expect(alice.locator("#notification-bell")).to_have_attribute(
            "title", re.compile("Notifications")
        )
        alice.screenshot(path=artifacts / "alice-badge-cleared.png")
    finally:
        alice.context.close()
        bob.context.close()
