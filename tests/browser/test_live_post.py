"""Two people on the same account page: one posts, the other sees it arrive without a reload."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.browser.conftest import LiveServer
from tests.conftest import Cast

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 15_000


def log_in(browser: Browser, server: LiveServer, username: str) -> Page:
    """A fresh browser context (its own cookies), logged in through the /login/ form."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto("/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(f"pw-{username}")
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/login/"))
    expect(page.locator(".me-name")).to_be_visible()
    return page


def record_frames(page: Page) -> list[dict[str, Any]]:
    """Every JSON frame the page's WebSockets receive, in order, from now on."""
    frames: list[dict[str, Any]] = []

    def on_frame(payload: str | bytes) -> None:
        try:
            frames.append(json.loads(payload))
        except ValueError:
            frames.append({"unparsed": repr(payload)})

    def on_websocket(ws: WebSocket) -> None:
        ws.on("framereceived", on_frame)

    page.on("websocket", on_websocket)
    return frames


def test_post_reaches_a_teammate_live(
    cast: Cast, live_server_daphne: LiveServer, chromium: Browser, artifacts: Path
) -> None:
    account_path = f"/accounts/{cast.account.pk}/"
    stream = f"account:{cast.account.pk}"
    first_line = "Maria confirmed the Q3 renewal — sending the order form today"
    second_line = "She needs it signed by Friday."
    text = f"{first_line}\n{second_line}"

    alice = log_in(chromium, live_server_daphne, "alice")
    bob = log_in(chromium, live_server_daphne, "bob")
    try:
        alice_frames = record_frames(alice)
        with alice.expect_websocket() as socket_info:
            alice.goto(account_path)
        socket = socket_info.value
        expect(alice.locator("h1")).to_have_text("Acme Logistics")
        alice_timeline = alice.locator("#timeline")
        expect(alice_timeline).to_have_attribute("data-stream", stream)
        expect(alice_timeline).not_to_contain_text(first_line)

        # The socket is open (the indicator says so) and the server accepted the subscription.
        live = alice.locator("#live-status")
        expect(live).to_be_visible()
        expect(live).to_have_text("Live")
        expect(live).to_have_class(re.compile(r"\bonline\b"))
        if not any(f.get("type") == "subscribed" for f in alice_frames):
            socket.wait_for_event(
                "framereceived", predicate=lambda p: json.loads(p).get("type") == "subscribed"
            )
        assert {"type": "subscribed", "stream": stream}.items() <= alice_frames[0].items(), (
            alice_frames
        )

        alice.evaluate("window.__marker = 1")
        alice_url = alice.url

        bob.goto(account_path)
        expect(bob.locator("h1")).to_have_text("Acme Logistics")
        bob.locator("#composer-body").fill(text)
        bob.get_by_role("button", name="Post", exact=True).click()
        # Bob's own page reloads after the form post and shows his post once.
        expect(bob.locator("#timeline")).to_contain_text(first_line)
        expect(bob.locator("#timeline > li", has_text=first_line)).to_have_count(1)
        expect(bob.locator("#composer-body")).to_have_value("")

        # Alice's page gets it over the socket: once, on top, by Bob, and without navigating.
        expect(alice_timeline).to_contain_text(first_line, timeout=WAIT_MS)
        posted = alice.locator("#timeline > li", has_text=first_line)
        expect(posted).to_have_count(1)
        expect(alice.locator("#timeline > li").first).to_contain_text(second_line)
        # Rendered live, the post reads as it does on a reloaded page: two lines.
        bob_text = bob.locator("#timeline > li", has_text=first_line).locator(".activity-text")
        assert posted.locator(".activity-text").inner_text() == bob_text.inner_text() == text
        expect(posted.locator(".activity-author")).to_have_text(re.compile(r"^Bob"))
        expect(live).to_have_text("Live")
        assert alice.evaluate("window.__marker") == 1, "Alice's page reloaded or navigated"
        assert alice.url == alice_url
        # It has the buttons a rendered one has, and they work (Bob's post: no Edit for Alice).
        expect(posted.locator("summary", has_text="Reply")).to_be_visible()
        expect(posted.locator("summary", has_text="Edit")).to_have_count(0)
        posted.get_by_role("button", name="♥ Like").click()
        liked = alice.locator("#timeline > li", has_text=first_line)
        expect(liked.get_by_role("button", name=re.compile("Liked"))).to_be_visible()
        created = [f for f in alice_frames if f.get("type") == "activity.created"]
        assert len(created) == 1, alice_frames
        assert created[0]["stream"] == stream
        # A browser submits a textarea's line breaks as CRLF, and the body is stored as sent.
        assert created[0]["data"]["body"].replace("\r\n", "\n") == text
    finally:
        alice.screenshot(path=artifacts / "alice-live.png", full_page=True)
        bob.screenshot(path=artifacts / "bob-after-post.png", full_page=True)
        alice.context.close()
        bob.context.close()


def test_outsider_gets_not_found(
    cast: Cast, live_server_daphne: LiveServer, chromium: Browser, artifacts: Path
) -> None:
    erin = log_in(chromium, live_server_daphne, "erin")
    try:
        account_path = f"/accounts/{cast.account.pk}/"
        response = erin.goto(account_path)
        assert response is not None
        assert response.status == 404
        assert erin.url == f"{live_server_daphne.url}{account_path}"  # not a redirect to login
        expect(erin.locator("body")).not_to_contain_text("Acme Logistics")
        expect(erin.locator("body")).not_to_contain_text("Maria")
    finally:
        erin.screenshot(path=artifacts / "erin-404.png", full_page=True)
        erin.context.close()
