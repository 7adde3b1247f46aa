"""The dashboard served for real and driven in headless Chromium: the plumbing of the browser tests
(tests/test_browser.py) and of the README's pictures (scripts/readme_images.py).

`serve(env)` runs `streamlit run dashboard/app.py` on a free localhost port until the block ends; `chromium()` opens
Debian's Chromium through Playwright (no browser download); `visit`, `select`, `enter`, `settle` and `screenshot`
drive a page the way a person does and wait for Streamlit to finish each script run.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from playwright import sync_api

from salad_core.paths import REPO_ROOT

START_S = 90  # the server's first health answer (imports, first script compile) on a busy 2-core machine
PAGE_MS = 60_000  # one script run, or one rerun after a control is used
JOB_MS = 180_000  # a background job the page started (loading a model, computing representations), then its redraw
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'
DRAWN = "() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')].every(c => c.querySelector('.main-svg'))"
WIDTH = 1440


def chromium_path() -> str | None:
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"streamlit did not answer {url}/_stcore/health within {START_S} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def serve(env: dict[str, str], log: Path) -> Iterator[str]:
    """The dashboard on a free localhost port with `env` (its store and data folder), its output in `log`; yields
    its base URL and stops it when the block ends."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


@contextlib.contextmanager
def chromium() -> Iterator[sync_api.Browser]:
    sync_api.expect.set_options(timeout=30_000)  # what a control changes shows within this, even on a busy machine
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def settle(page: sync_api.Page) -> None:
    """Wait for the script run (or rerun) to end and every chart on the page to be drawn."""
    page.wait_for_timeout(300)  # a rerun that a control triggered has started by now
    page.wait_for_selector(IDLE, timeout=PAGE_MS)
    page.wait_for_function(DRAWN, timeout=PAGE_MS)


def select(page: sync_api.Page, label: str, option: str) -> None:
    """Open the select box labelled `label` and pick the first option that contains `option`.

    A rerun that ends just after the click redraws the box and closes its list: open it again until the option shows.
    """
    choice = page.get_by_role("option").filter(has_text=option).first
    for _ in range(5):
        settle(page)
        page.get_by_role("combobox", name=label, exact=True).click()
        try:
            choice.wait_for(state="visible", timeout=3000)
            break
        except sync_api.TimeoutError:
            page.keyboard.press("Escape")
    choice.click()
    settle(page)


def enter(page: sync_api.Page, label: str, value: str) -> None:
    """Type `value` into the text or number input labelled `label` and submit it."""
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    settle(page)


def shown_errors(page: sync_api.Page) -> list[str]:
    return [e.inner_text()[:500] for e in page.locator(ERRORS).all()]


def charts_drawn(page: sync_api.Page, count: int, timeout: float = PAGE_MS) -> None:
    sync_api.expect(page.get_by_test_id("stPlotlyChart")).to_have_count(count, timeout=timeout)
    settle(page)


def visit(browser: sync_api.Browser, url: str) -> sync_api.Page:
    page = browser.new_page(viewport={"width": WIDTH, "height": 1100})
    page.set_default_timeout(PAGE_MS)
    page.goto(url)
    settle(page)
    return page


def screenshot(page: sync_api.Page, path: Path, max_height: int = 8000) -> None:
    """The whole page (up to `max_height` pixels): Streamlit scrolls inside its main section, so the window is first
    made as tall as it."""
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]')?.scrollHeight || 0")
    page.set_viewport_size({"width": WIDTH, "height": min(max(height, 1100), max_height)})
    page.wait_for_timeout(500)  # charts redraw at the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path)
