"""What the browser tests share: Debian's Chromium driven by Playwright (never Playwright's own browser
download), a context, the node's address, screenshots, and a record of dialogs (script that ran)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from conftest import PASSWORD, REPO

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SHOTS = REPO / "test-artifacts" / "screenshots"


def chromium() -> Iterator[Browser]:
    """A module's browser fixture: ``yield from chromium()``."""
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def context(browser: Browser, locale: str = "en-US") -> BrowserContext:
    ctx = browser.new_context(ignore_https_errors=True, locale=locale, viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(20_000)
    return ctx


def base(node) -> str:
    return f"https://127.0.0.1:{node.ports['https']}"


def log_in(page: Page, node, address: str, password: str = PASSWORD) -> None:
    page.goto(base(node) + "/admin/login")
    page.fill("input[name=address]", address)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))


def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_dialogs(page: Page) -> list[str]:
    """Every alert/confirm a page opens, recorded (and dismissed): script that ran."""
    opened: list[str] = []

    def record(dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()
    page.on("dialog", record)
    return opened
