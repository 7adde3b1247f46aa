"""End to end in a real browser: `streamlit run dashboard/app.py` serves the full hand-built store of
tests/dashboard_store.py on a free localhost port, and headless Chromium (Debian's `chromium`, driven by Playwright;
no browser download) opens every page, uses its main control, checks that no exception or error is shown, and saves
a screenshot per page.

Screenshots go to this test's temporary folder and, when SALAD_SCREENSHOTS=1, also to data/screenshots/. Nothing
heavy runs: the first launch's automatic evaluation is off (SALAD_NO_AUTOSTART=1) and no control that starts a job,
loads a model or computes representations is used.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from salad_core.paths import REPO_ROOT
from salad_core.store import Store
from tests.dashboard_store import PAGES, build_full_store, fixture_run, round_model

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt has it)")
sync_api.expect.set_options(timeout=30_000)  # what a control changes shows within this, even on a busy machine

START_S = 90  # the server's first health answer (imports, first script compile) on a busy 2-core machine
PAGE_MS = 60_000  # one script run, or one rerun after a control is used
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'
DRAWN = "() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')].every(c => c.querySelector('.main-svg'))"


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


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, Store]]:
    """(base URL, store) of a dashboard serving the full store, with its own data folder."""
    root = tmp_path_factory.mktemp("browser")
    store = build_full_store(root)
    port = free_port()
    env = {**os.environ, "SALAD_DATA": str(root / "data"), "SALAD_STORE": str(store.path), "SALAD_NO_AUTOSTART": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("SALAD_FIRST_LIMIT", None)
    log = root / "streamlit.log"
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server, log)
        yield url, store
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> list[Path]:
    """Where screenshots go: this module's temporary folder, and data/screenshots/ with SALAD_SCREENSHOTS=1."""
    folders = [tmp_path_factory.mktemp("screenshots")]
    if os.environ.get("SALAD_SCREENSHOTS", "").strip().lower() in ("1", "true", "yes", "on"):
        folders.append(REPO_ROOT / "data" / "screenshots")
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


# ---------------------------------------------------------------------------------------------------------------
# Driving Streamlit widgets


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


def use_gap(page: sync_api.Page, store: Store) -> None:
    select(page, "Evaluation run", fixture_run(store))
    select(page, "Task", "capitals")
    sync_api.expect(page.get_by_text("6 of 12 items")).to_be_visible()


def use_dynamics(page: sync_api.Page, store: Store) -> None:
    select(page, "Task", "mini-capitals")
    sync_api.expect(page.get_by_test_id("stPlotlyChart")).to_have_count(7)


def use_explorer(page: sync_api.Page, store: Store) -> None:
    enter(page, "Items per task (0 = all)", "6")
    sync_api.expect(page.locator("code").filter(has_text=re.compile(r"^run:eval-.*@6$"))).to_be_visible()
    sync_api.expect(page.get_by_role("button", name="Compute representations")).to_be_visible()  # not pressed


def use_training(page: sync_api.Page, store: Store) -> None:
    runs = store.runs("train")
    select(page, "Training run", runs.loc[runs["status"] == "failed", "run_id"].iloc[0])
    sync_api.expect(page.get_by_text("Resume from its last checkpoint")).to_be_visible()


def use_selection(page: sync_api.Page, store: Store) -> None:
    select(page, "Stage I model", round_model(store))
    sync_api.expect(page.get_by_text("Stage I vs Stage II, active vs uniform")).to_be_visible()
    sync_api.expect(page.get_by_test_id("stPlotlyChart")).to_have_count(5)


def use_demo(page: sync_api.Page, store: Store) -> None:
    page.get_by_role("radiogroup", name="Question").get_by_text("My own question").click()
    settle(page)
    sync_api.expect(page.get_by_role("textbox", name="Question", exact=True)).to_have_value(
        "What is the capital of France?")


MAIN_CONTROLS: dict[str, Callable[[sync_api.Page, Store], None]] = {"": use_gap, "dynamics": use_dynamics, "explorer": use_explorer,
                                      "training": use_training, "selection": use_selection, "demo": use_demo}


def visit(browser: sync_api.Browser, url: str) -> sync_api.Page:
    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    page.set_default_timeout(PAGE_MS)
    page.goto(url)
    settle(page)
    return page


def screenshot(page: sync_api.Page, shots: list[Path], name: str) -> None:
    """The whole page: Streamlit scrolls inside its main section, so the window is first made as tall as it."""
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]')?.scrollHeight || 0")
    page.set_viewport_size({"width": 1440, "height": min(max(height, 1100), 8000)})
    page.wait_for_timeout(500)  # charts redraw at the new size
    page.screenshot(path=shots[0] / f"{name}.png")
    for folder in shots[1:]:
        shutil.copyfile(shots[0] / f"{name}.png", folder / f"{name}.png")


@pytest.mark.parametrize("path, title", [(p, t) for _, p, t in PAGES], ids=[p or "gap" for _, p, _ in PAGES])
def test_every_page_works_in_the_browser(served, browser, shots, path, title):
    url, store = served
    page = visit(browser, f"{url}/{path}")
    try:
        sync_api.expect(page.locator("h1").filter(has_text=title)).to_be_visible()
        assert not shown_errors(page), shown_errors(page)
        MAIN_CONTROLS[path](page, store)
        assert not shown_errors(page), shown_errors(page)
        screenshot(page, shots, path or "gap")
    except Exception:
        screenshot(page, shots, f"{path or 'gap'}-failed")  # what the page showed when it failed
        raise
    finally:
        page.close()


def test_a_fresh_store_opens_on_the_first_launch(served, browser, shots, tmp_path):
    url, _ = served
    page = visit(browser, url)
    try:
        enter(page, "Results store (DuckDB file)", str(tmp_path / "fresh.duckdb"))
        sync_api.expect(page.get_by_role("heading", name="No results yet")).to_be_visible()
        sync_api.expect(page.get_by_text("Start the evaluation: salad eval")).to_be_visible()
        assert not shown_errors(page), shown_errors(page)
        screenshot(page, shots, "first-launch")
    finally:
        page.close()
