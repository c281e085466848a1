"""The dashboard in a real browser: Playwright for Python driving Debian's Chromium
(/usr/bin/chromium, installed by scripts/browser.sh; Playwright never downloads one). A
transfer made during the test appears in the live feed and reaches delivered on the page;
search shows its timeline, transactions and attestations; the asset's supply is balanced.

Screenshots are kept as test artifacts in test-artifacts/ at the repository's root (or
$ISLANDS_TEST_ARTIFACTS): dashboard-in-flight.png while the transfer crosses, and
dashboard-delivered.png once it is delivered, with its details open."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from adapters.evm.demo import bridge
from tests.conftest import ROOT
from tests.integration.operators.conftest import Ops, user_key

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("ISLANDS_TEST_ARTIFACTS", ROOT / "test-artifacts"))
ITT = 10**18
SLOW = 90_000  # ms: a transfer crosses in a few seconds; the machine may be busy


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    assert CHROMIUM.is_file(), "no /usr/bin/chromium: run scripts/browser.sh (make test does)"
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1440, "height": 1100},
        )
        try:
            yield context
        finally:
            context.close()


def test_a_transfer_appears_in_the_feed_and_reaches_delivered(
    ops: Ops, browser: BrowserContext
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(ops.api + "/")

    # The map: three islands and the six routes between them, all up.
    for name in ("alpha", "beta", "gamma"):
        expect(page.locator(f'[data-chain="{name}"][data-status="active"]')).to_be_visible()
    expect(page.locator("[data-route]")).to_have_count(6)
    expect(page.locator("#feed-status")).to_have_text("live", timeout=SLOW)

    sent = bridge(ops.doc, "alpha", "beta", 7 * ITT, user_key(ops))
    row = page.locator(f'#feed li[data-message-id="{sent.message_id}"]')
    expect(row).to_be_visible(timeout=SLOW)
    if row.get_attribute("data-state") != "delivered":
        page.screenshot(path=str(ARTIFACTS / "dashboard-in-flight.png"), full_page=True)
    expect(row).to_have_attribute("data-state", "delivered", timeout=SLOW)
    expect(row).to_contain_text("alpha → beta")
    expect(row).to_contain_text("7,000,000,000,000,000,000 ITT")

    _search_shows_the_whole_story(page, sent.message_id, sent.tx_hash, ops)
    expect(page.locator('[data-asset="ITT"][data-balanced="true"]')).to_be_visible(timeout=SLOW)
    page.screenshot(path=str(ARTIFACTS / "dashboard-delivered.png"), full_page=True)
    assert (ARTIFACTS / "dashboard-delivered.png").stat().st_size > 10_000
    assert not errors, errors


def _search_shows_the_whole_story(page: Page, message_id: str, tx_hash: str, ops: Ops) -> None:
    page.fill("#search", tx_hash)  # a user pastes their transaction hash
    page.click("#search-form button")
    detail = page.locator(f'#detail article[data-message-id="{message_id}"]')
    expect(detail).to_have_attribute("data-state", "delivered", timeout=SLOW)
    expect(detail.locator("table.timeline tbody tr")).to_have_count(5)
    for state in ("observed", "finalized", "attested", "submitted", "delivered"):
        expect(detail.locator("table.timeline")).to_contain_text(state)
    expect(detail.locator("code.src-tx")).to_have_text(tx_hash)
    dst_tx = ops.client().message(message_id).dst_tx_hash
    assert dst_tx is not None
    expect(detail.locator("code.dst-tx")).to_have_text(dst_tx)
    expect(detail.locator("table.attestations tbody tr")).to_have_count(2)
    for index in (0, 1):  # validator 1 (a hub worker) and validator 2 (outside, over the API)
        expect(detail.locator("table.attestations")).to_contain_text(
            ops.account("validator", index)["address"]
        )
    expect(detail.locator(".transfer")).to_contain_text("7,000,000,000,000,000,000")

    page.fill("#search", ops.account("user")["address"])  # or their address
    page.click("#search-form button")
    expect(page.locator(f'#detail li.result[data-message-id="{message_id}"]')).to_be_visible()
    page.locator(f'#detail li.result[data-message-id="{message_id}"]').click()
    expect(detail).to_be_visible()
