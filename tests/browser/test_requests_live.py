"""A request worked live: alice raises it from the account page, carol (support) sees it arrive
in her queue, notes it internally and resolves it, while alice's account page and dave's
dashboard (ticker and tables) follow along without a reload. A request mailed in by a customer
gets carol's reply by email. Screenshots at 1280 and 390 px wide go to test-artifacts/browser/."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from feed.actions import add_comment
from feed.models import Activity
from integrations.support.replies import customer_reply_message
from tests.browser.conftest import LiveServer
from tests.browser.test_live_post import WAIT_MS, log_in
from tests.conftest import Cast
from tests.integrations.messages import request_by_mail

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
        alice_requests = dave.locator('#panel-activity tr[data-person="alice"] td').nth(6)
        expect(alice_requests).to_have_text("0")
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
        # The tables follow too: alice's "Requests raised" goes from 0 to 1, marked as changed.
        expect(alice_requests).to_have_text("1", timeout=WAIT_MS)
        expect(alice_requests).to_have_class(re.compile("changed"))
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
        # An internal note: marked as one on carol's page and, live, on alice's account page.
        carol.locator("#reply-body").fill("VAT id changed in the ERP on 1 March; checking.")
        carol.locator("[data-note]").click()
        note = carol.locator("#thread > li.internal-note")
        expect(note).to_contain_text("Internal note")
        expect(note).to_contain_text("VAT id changed in the ERP")
        alice_note = alice.locator("#timeline li.internal-note", has_text="VAT id changed")
        expect(alice_note).to_contain_text("Internal note", timeout=WAIT_MS)
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
        _phone_screenshots(pages, artifacts, "resolved")
    finally:
        for name, page in pages.items():
            page.screenshot(path=artifacts / f"requests-{name}-last.png", full_page=True)
            page.context.close()


def _phone_screenshots(pages: dict[str, Page], artifacts: Path, moment: str) -> None:
    """Each page as a phone shows it (390 px wide), then back to the desktop width."""
    for name, page in pages.items():
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=artifacts / f"{name}-{moment}-390.png", full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})


def test_support_replies_to_a_customer_by_email_and_notes_stay_inside(
    cast: Cast, live_server_daphne: LiveServer, chromium: Browser, artifacts: Path
) -> None:
    mailed = _in_a_thread(lambda: request_by_mail(subject="Invoice page shows an error"))
    assert isinstance(mailed, Activity)
    request_id = mailed.pk
    carol = log_in(chromium, live_server_daphne, "carol")
    alice = log_in(chromium, live_server_daphne, "alice")
    pages = {"carol": carol, "alice": alice}
    try:
        carol.goto(f"/requests/{request_id}/")
        expect(carol.locator("[data-customer-reply]")).to_have_text(
            "Email reply to maria@acme.example"
        )
        carol.locator("#reply-body").fill("Refund approved by finance; do not tell her yet.")
        carol.locator("[data-note]").click()
        expect(carol.locator("#thread > li.internal-note")).to_contain_text("Refund approved")
        carol.locator("#reply-body").fill("Hello Maria,\nthe invoice page works again.")
        carol.locator("[data-customer-reply]").click()
        sent = carol.locator("#thread > li.to-customer")
        expect(sent).to_contain_text("Email to customer")
        expect(sent).to_contain_text("To maria@acme.example")
        carol.screenshot(path=artifacts / "carol-mailed-request-replied.png", full_page=True)
        # Alice (a rep) may note, not write to the customer.
        alice.goto(f"/requests/{request_id}/")
        expect(alice.locator("[data-note]")).to_be_visible()
        expect(alice.locator("[data-customer-reply]")).to_have_count(0)
        alice.screenshot(path=artifacts / "alice-mailed-request.png", full_page=True)
        _phone_screenshots(pages, artifacts, "mailed-request")
    finally:
        for page in pages.values():
            page.context.close()
    # What left for the customer carries the reply and never the note.
    reply = _in_a_thread(lambda: Activity.objects.get(kind="email", parent_id=request_id))
    assert isinstance(reply, Activity) and reply.details["direction"] == "outbound"
    message = customer_reply_message(reply, None).message().as_string()
    assert "the invoice page works again" in message and "Refund approved" not in message
