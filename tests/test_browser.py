"""End to end in a real browser, on what the real commands make: `streamlit run dashboard/app.py` serves the store
of tests/pipeline.py (the nano world built, Stage I at α = 1 and 0, a selection round with its Stage II, an
evaluation with the cascade) on a free localhost port, and headless Chromium (Debian's `chromium`, driven by
Playwright; no browser download) opens every page, uses its main control, checks that no exception or error is
shown, and saves a screenshot per page. The main controls do the real work: the explorer computes and maps one model,
then the comparison of two; the demo answers a question; the Training page's form starts a job (stopped at once).

Screenshots go to this test's temporary folder and, when SALAD_SCREENSHOTS=1, also to data/screenshots/. The first
launch's automatic evaluation is off (SALAD_NO_AUTOSTART=1).
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

from salad_core import jobs
from salad_core.paths import REPO_ROOT
from salad_core.train.config import TrainConfig
from tests.dashboard_store import PAGES
from tests.pipeline import Pipeline

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt has it)")
sync_api.expect.set_options(timeout=30_000)  # what a control changes shows within this, even on a busy machine

START_S = 90  # the server's first health answer (imports, first script compile) on a busy 2-core machine
PAGE_MS = 60_000  # one script run, or one rerun after a control is used
JOB_MS = 180_000  # a background job the page started (loading a model, computing representations), then its redraw
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
def served(pipeline: Pipeline, tmp_path_factory) -> Iterator[tuple[str, Pipeline]]:
    """(base URL, pipeline) of a dashboard serving the pipeline's store and data folder."""
    env = {**pipeline.env(), "SALAD_NO_AUTOSTART": "1"}
    env.pop("SALAD_FIRST_LIMIT", None)
    log = tmp_path_factory.mktemp("browser") / "streamlit.log"
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server, log)
        yield url, pipeline
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


def charts_drawn(page: sync_api.Page, count: int, timeout: float = PAGE_MS) -> None:
    sync_api.expect(page.get_by_test_id("stPlotlyChart")).to_have_count(count, timeout=timeout)
    settle(page)


def use_gap(page: sync_api.Page, pipeline: Pipeline) -> None:
    select(page, "Evaluation run", pipeline.eval_run)
    select(page, "Task", "nano-capitals")
    sync_api.expect(page.get_by_text("4 of 8 items")).to_be_visible()


def use_dynamics(page: sync_api.Page, pipeline: Pipeline) -> None:
    select(page, "Task", "nano-capitals")
    sync_api.expect(page.get_by_role("heading", name="What the gap follows")).to_be_visible()


def use_explorer(page: sync_api.Page, pipeline: Pipeline) -> None:
    """One model computed and mapped, then the comparison of two: the background jobs run for real."""
    select(page, "Model", pipeline.alpha1)
    page.get_by_role("button", name="Compute representations").click()
    charts_drawn(page, 3, JOB_MS)  # the map, the per-layer metrics, the opened item's token KL
    select(page, "Compare with (same item set, same map)", pipeline.alpha0)
    page.get_by_role("button", name="Compute representations").click()
    charts_drawn(page, 4, JOB_MS)  # a map per model, on one projection


def use_training(page: sync_api.Page, pipeline: Pipeline) -> None:
    """The form, left as it opens on the mini preset, starts exactly `salad train --preset mini` (the job is stopped
    at once: only its command line is checked)."""
    select(page, "Training run", pipeline.alpha0)
    page.get_by_role("button", name="Start training").click()
    started = page.get_by_text(re.compile(r"^Started salad train .* as job train-"))
    sync_api.expect(started).to_be_visible()
    command, job_id = re.match(r"Started salad (.*) as job (\S+?)\.$", started.inner_text()).groups()
    os.environ["SALAD_DATA"] = str(pipeline.data)  # the jobs folder of the server's data
    try:
        jobs.stop_job(job_id)
    finally:
        os.environ.pop("SALAD_DATA")
    from salad_core.cli import build_parser
    from salad_core.cli_training import train_config

    assert train_config(build_parser().parse_args(command.split())) == TrainConfig.for_preset("mini")


def use_selection(page: sync_api.Page, pipeline: Pipeline) -> None:
    select(page, "Stage I model", pipeline.alpha1)
    sync_api.expect(page.get_by_text(pipeline.round_id).first).to_be_visible()
    sync_api.expect(page.get_by_text("Stage I vs Stage II, active vs uniform")).to_be_visible()


def use_demo(page: sync_api.Page, pipeline: Pipeline) -> None:
    """The sidebar's run is the evaluation of the α = 1 nano model: the demo asks it its own world's questions."""
    sync_api.expect(page.get_by_role("combobox", name="Task", exact=True)).to_have_value(re.compile("^nano-"))
    page.get_by_role("button", name="Answer").click()
    charts_drawn(page, 1, JOB_MS)  # the models load on the first answer
    assert not page.get_by_text("word-level vocabulary has no entry").count()


MAIN_CONTROLS: dict[str, Callable[[sync_api.Page, Pipeline], None]] = {
    "": use_gap, "dynamics": use_dynamics, "explorer": use_explorer, "training": use_training,
    "selection": use_selection, "demo": use_demo}


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
    url, pipeline = served
    page = visit(browser, f"{url}/{path}")
    try:
        sync_api.expect(page.locator("h1").filter(has_text=title)).to_be_visible()
        assert not shown_errors(page), shown_errors(page)
        MAIN_CONTROLS[path](page, pipeline)
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
