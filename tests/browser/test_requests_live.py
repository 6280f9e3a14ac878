"""A request worked live: alice raises it from the account page, carol (support) sees it arrive
in her queue and resolves it, while alice's account page and dave's dashboard follow along
without a reload."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from feed.actions import add_comment
from feed.models import Activity
from tests.browser.conftest import LiveServer
from tests.browser.test_live_post import WAIT_MS, log_in
from tests.conftest import Cast

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SUBJECT = "Invoices show the wrong VAT number"


def _in_a_thread(work: Callable[[], object]) -> object:
    """Database work from the test itself: Playwright's sync API runs an event loop in this
    thread, where Django refuses synchronous queries."""
    from django.db import connection

    def run() -> object:
        try:
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def test_support_resolves_a_request_while_author_and_manager_watch(
    cast: Cast, live_server_daphne: LiveServer, chromium: Browser, artifacts: Path
) -> None:
    carol = log_in(chromium, live_server_daphne, "carol")
    dave = log_in(chromium, live_server_daphne, "dave")
    alice = log_in(chromium, live_server_daphne, "alice")
    pages = {"carol": carol, "dave": dave, "alice": alice}
    try:
        carol.goto("/requests/")
        expect(carol.locator("#request-rows")).to_contain_text("No requests match.")
        expect(carol.locator("#live-status")).to_have_text("Live")
        dave.goto("/dashboard/")
        expect(dave.locator("h1")).to_have_text("East team")
        expect(dave.locator("#ticker")).to_have_attribute("data-stream", f"team:{cast.east.pk}")
        expect(dave.locator("#live-status")).to_have_text("Live")
        for page in pages.values():
            page.evaluate("window.__marker = 1")

        # Alice raises it from the account page's composer, tab "Request".
        alice.goto(f"/accounts/{cast.account.pk}/")
        alice.locator("#composer").get_by_role("link", name="Request", exact=True).click()
        form = alice.locator("#compose-request")
        form.locator("input[name=subject]").fill(SUBJECT)
        form.locator("select[name=priority]").select_option("urgent")
        form.locator("textarea[name=body]").fill("Since the March invoice run.")
        form.get_by_role("button", name="Raise request").click()
        item = alice.locator("#timeline > li", has_text=SUBJECT)
        expect(item.locator("[data-status]")).to_have_text("Open")
        expect(alice.locator("#open-requests")).to_contain_text(SUBJECT)
        expect(alice.locator("#live-status")).to_have_text("Live")
        alice.evaluate("window.__marker = 1")

        # It arrives in carol's queue and on dave's ticker without a reload.
        row = carol.locator("#request-rows tr", has_text=SUBJECT)
        expect(row).to_have_count(1, timeout=WAIT_MS)
        expect(row.locator("[data-priority]")).to_have_text("Urgent")
        ticker_item = dave.locator("#ticker > li", has_text=SUBJECT)
        expect(ticker_item).to_have_count(1, timeout=WAIT_MS)
        expect(ticker_item.locator("[data-status]")).to_have_text("Open")
        carol.screenshot(path=artifacts / "carol-queue-live.png", full_page=True)
        dave.screenshot(path=artifacts / "dave-dashboard-before.png", full_page=True)
        assert carol.evaluate("window.__marker") == 1 and dave.evaluate("window.__marker") == 1

        # Carol opens it, claims it and resolves it with a note.
        row.locator(".request-subject").click()
        expect(carol.locator("h1")).to_have_text(SUBJECT)
        expect(carol.locator("aside")).to_contain_text("Acme Logistics")
        carol.locator("[data-claim]").click()
        expect(carol.locator(".request-card [data-assignee]")).to_have_text(re.compile("carol"))
        expect(carol.locator("#live-status")).to_have_text("Live")
        # Alice answers in the thread meanwhile: it arrives on carol's request page by itself.
        _in_a_thread(
            lambda: add_comment(
                actor=cast.owner,
                parent=Activity.objects.get(subject=SUBJECT),
                body="Only the March run, as far as I know.",
            )
        )
        expect(carol.locator("#thread")).to_contain_text("Only the March run", timeout=WAIT_MS)
        carol.locator("textarea[name=resolution]").fill("Corrected the VAT number; re-issued.")
        carol.locator("[data-resolve]").click()
        expect(carol.locator(".request-card [data-status]")).to_have_text("Resolved")
        expect(carol.locator(".history")).to_contain_text("moved it from In progress to Resolved")
        carol.screenshot(path=artifacts / "carol-request-resolved.png", full_page=True)

        # Alice's page and dave's dashboard follow, live.
        expect(item.locator("[data-status]")).to_have_text("Resolved", timeout=WAIT_MS)
        expect(alice.locator("#open-requests")).not_to_contain_text(SUBJECT)
        expect(alice.locator("#open-requests-count")).to_have_text("0")
        expect(ticker_item.locator("[data-status]")).to_have_text("Resolved", timeout=WAIT_MS)
        assert alice.evaluate("window.__marker") == 1, "alice's page reloaded"
        assert dave.evaluate("window.__marker") == 1, "dave's page reloaded"
        alice.screenshot(path=artifacts / "alice-account-resolved-live.png", full_page=True)
        dave.screenshot(path=artifacts / "dave-dashboard-resolved-live.png", full_page=True)
    finally:
        for name, page in pages.items():
            page.screenshot(path=artifacts / f"requests-{name}-last.png", full_page=True)
            page.context.close()
