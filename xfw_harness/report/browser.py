"""Opening a report in a real browser: headless Chromium (Debian's `chromium` package) driven by Playwright.

Used by the end-to-end test of the report (tests/report/test_report_browser.py) and by the report's size and load
time measurement (scripts/report_scale.py). Playwright is told to use the system's Chromium, so nothing is
downloaded; Chromium's background networking is off, as the machines this runs on have no internet.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path() -> str | None:
    return os.environ.get("HARNESS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def browser_unavailable_reason() -> str | None:
    """None when a report can be opened in headless Chromium here, else why not and how to get it."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (it is in requirements.lock: `make setup`)"
    if chromium_path() is None:
        return ("no Chromium found: install Debian's `chromium` package (`apt-get install chromium`; .ci/run does) "
                "or set HARNESS_CHROMIUM to a Chromium binary")
    return None


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (a Playwright Browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_report(browser: Any, path: Path, width: int = 1400, height: int = 1000) -> tuple[Any, list[str]]:
    """A page showing the report at `path`, once its script has drawn the tests; and the list that collects
    the page's console errors and uncaught exceptions (it keeps filling while the page is used)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    page.on("request", lambda r: problems.append(f"network request: {r.url}")
            if not r.url.startswith(("file:", "data:")) else None)
    page.goto(Path(path).resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page, problems


def load_time_ms(browser: Any, path: Path, repeats: int = 5) -> float:
    """Median time from the start of navigation to the table of every test drawn (the page's reportReadyMs:
    reading the file, parsing, unpacking the data and building the table)."""
    times = []
    for _ in range(repeats):
        page, _ = open_report(browser, path)
        times.append(float(page.evaluate("window.reportReadyMs")))
        page.close()
    return statistics.median(times)
