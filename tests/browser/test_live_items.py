"""A live activity is the server-rendered one: the same buttons for the reader, the same account
name on the home page, for posts and for replies, and its buttons work without a reload first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from feed.actions import post_activity
from feed.models import Activity
from tests.browser.conftest import LiveServer
from tests.browser.test_live_post import log_in
from tests.conftest import Cast

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def html_of(item: Locator) -> str:
    """The item's markup less what differs between two renderings of the same thing: the CSRF
    token's per-response mask, the arrival highlight and the relative time."""
    html = item.evaluate("el => el.outerHTML")
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "csrf", html)
    html = html.replace(" fresh", "")
    return re.sub(r"(<time[^>]*>)[^<]*(</time>)", r"\1\2", html)


def expect_reader_buttons(item: Locator, *, is_root: bool) -> None:
    """The buttons a reader who did not write `item` gets: like; reply and thread on a root;
    no edit, no delete."""
    expect(item.get_by_role("button", name="♥ Like")).to_be_visible()
    for menu in ("Reply", "Thread"):
        expect(item.locator("summary", has_text=menu)).to_have_count(1 if is_root else 0)
    expect(item.locator("summary", has_text="Edit")).to_have_count(0)
    expect(item.get_by_role("button", name="Delete")).to_have_count(0)


def is_same_document(page: Page) -> bool:
    return bool(page.evaluate("window.__marker === 1"))


def open_live(page: Page, path: str) -> None:
    """Open `path` and wait until its socket has subscribed (the live indicator says so)."""
    page.goto(path)
    expect(page.locator("#live-status")).to_have_text("Live")
    page.evaluate("window.__marker = 1")


def test_live_post_and_reply_match_their_rendering_and_work(
    cast: Cast, live_server_daphne: LiveServer, chromium: Browser, artifacts: Path
) -> None:
    account_path = f"/accounts/{cast.account.pk}/"
    text = "Legal signed off the renewal"
    reply_text = "Countersigned copy attached"

    alice = log_in(chromium, live_server_daphne, "alice")  # Acme's owner: follows it quietly
    alice_home = alice.context.new_page()
    bob = log_in(chromium, live_server_daphne, "bob")
    try:
        open_live(alice, account_path)
        open_live(alice_home, "/")
        bob.goto(account_path)
        bob.locator("#composer-body").fill(text)
        bob.get_by_role("button", name="Post", exact=True).click()
        expect(bob.locator("#timeline > li", has_text=text)).to_have_count(1)

        # Alice's account page: Bob's post with the buttons a reader who is not its author has.
        post = alice.locator("#timeline > li.activity", has_text=text)
        expect(post).to_have_count(1)
        expect_reader_buttons(post, is_root=True)

        # Alice's home page: the post names its account, as rendered items do.
        on_home = alice_home.locator("#timeline > li.activity", has_text=text)
        expect(on_home).to_have_count(1)
        expect(on_home.get_by_role("link", name="Acme Logistics")).to_be_visible()
        post_id = on_home.get_attribute("data-activity-id")
        live_home_html = html_of(on_home)

        # Bob replies in his thread; the reply reaches Alice's thread with its own buttons.
        mine = bob.locator("#timeline > li.activity", has_text=text)
        mine.locator("summary", has_text="Reply").click()
        mine.get_by_placeholder("Reply…").fill(reply_text)
        mine.get_by_role("button", name="Reply", exact=True).click()
        expect(bob.locator(".replies > li", has_text=reply_text)).to_have_count(1)
        reply = alice.locator(".replies > li.activity", has_text=reply_text)
        expect(reply).to_have_count(1)
        expect_reader_buttons(reply, is_root=False)
        live_reply_html = html_of(reply)
        assert is_same_document(alice) and is_same_document(alice_home), "a page reloaded"

        # Like on the live post works; Bob's page, live, shows the like on his post.
        bob.evaluate("window.__marker = 1")
        post.get_by_role("button", name="♥ Like").click()
        liked = alice.locator("#timeline > li.activity", has_text=text)
        expect(liked.get_by_role("button", name=re.compile(r"Liked · 1"))).to_be_visible()
        expect(mine.get_by_role("button", name=re.compile(r"Like · 1"))).to_be_visible()
        assert is_same_document(bob)

        # What arrived live is what a reload renders.
        assert html_of(alice.locator(".replies > li.activity", has_text=reply_text)) == (
            live_reply_html
        )
        alice_home.reload()
        assert html_of(alice_home.locator(f"#activity-{post_id}")) == live_home_html
        # No template text leaks onto the pages (a multi-line {# #} comment once did).
        expect(alice_home.locator("body")).not_to_contain_text("{#")
        expect(alice.locator("body")).not_to_contain_text("{#")
    finally:
        alice.screenshot(path=artifacts / "alice-live-items.png", full_page=True)
        alice_home.screenshot(path=artifacts / "alice-home-live-items.png", full_page=True)
        bob.screenshot(path=artifacts / "bob-live-items.png", full_page=True)
        alice.context.close()
        bob.context.close()


@pytest.fixture
def east_post(cast: Cast) -> Activity:
    # Written before the browser starts: Playwright's sync API runs an event loop in this thread,
    # in which Django refuses database calls.
    return post_activity(author=cast.owner, account=cast.account, body="East only")


def test_live_item_the_reader_may_not_see_is_not_shown(
    east_post: Activity, live_server_daphne: LiveServer, chromium: Browser
) -> None:
    """The fragment endpoint applies the visibility policy: an outsider gets 404, not HTML."""
    activity = east_post
    erin = log_in(chromium, live_server_daphne, "erin")
    alice = log_in(chromium, live_server_daphne, "alice")
    try:
        assert erin.request.get(f"/activities/{activity.pk}/item/").status == 404
        answer = alice.request.get(f"/activities/{activity.pk}/item/")
        assert answer.status == 200
        assert "East only" in answer.text()
    finally:
        erin.context.close()
        alice.context.close()
