"""Browser tests: the real app served over HTTP, driven by Debian's Chromium through Playwright.

Fixtures for journeys:
  live_server  base URL of the session's app, e.g. "http://127.0.0.1:41234"
  browser      one headless Chromium for the whole run
  new_page     new_page() -> a Page in a fresh browser context (its own cookies: one person each)

Every test in this folder is marked `browser` (select with `-m browser`, skip with `-m "not browser"`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from saas.config import PROJECT_ROOT
from tests.live_server import serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 10_000
SCREENSHOT_DIR = PROJECT_ROOT / "var" / "test-screenshots"

expect.set_options(timeout=DEFAULT_TIMEOUT_MS)  # `expect` waits as long as actions do


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    # Keep each phase's report on the item, so `new_page` can tell at teardown whether the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[str]:
    """The session's app on 127.0.0.1 and a free port, served from a background thread."""
    with serving(app) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium. "
            "Run `make test` (it installs it with apt-get), or `apt-get install chromium`.",
            pytrace=False,
        )
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def new_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[[], Page]]:
    """Open a page in a new browser context: each call is another person with their own cookies."""
    contexts: list[BrowserContext] = []

    def make() -> Page:
        context = browser.new_context()
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make

    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        _save_screenshots(request.node.name, contexts)
    for context in contexts:
        context.close()


def _save_screenshots(test_name: str, contexts: list[BrowserContext]) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", test_name)
    for c, context in enumerate(contexts, 1):
        for p, page in enumerate(context.pages, 1):
            path = SCREENSHOT_DIR / f"{stem}-context{c}-page{p}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
            except Exception as exc:  # a screenshot must never hide the real failure
                print(f"could not save screenshot {path}: {exc}")
            else:
                print(f"screenshot of the failed test: {path}")
