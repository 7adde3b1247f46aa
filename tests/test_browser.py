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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from salad_core import jobs
from salad_core.train.config import TrainConfig
from tests.dashboard_store import PAGES
from tests.pipeline import Pipeline

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt has it)")
browsing = pytest.importorskip("dashboard.browser")
if browsing.chromium_path() is None:
    pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)", allow_module_level=True)
from dashboard.browser import JOB_MS, charts_drawn, enter, select, shown_errors, visit  # noqa: E402


@pytest.fixture(scope="module")
def served(pipeline: Pipeline, tmp_path_factory) -> Iterator[tuple[str, Pipeline]]:
    """(base URL, pipeline) of a dashboard serving the pipeline's store and data folder."""
    env = {**pipeline.env(), "SALAD_NO_AUTOSTART": "1"}
    env.pop("SALAD_FIRST_LIMIT", None)
    with browsing.serve(env, tmp_path_factory.mktemp("browser") / "streamlit.log") as url:
        yield url, pipeline


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with browsing.chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> list[Path]:
    """Where screenshots go: this module's temporary folder, and data/screenshots/ with SALAD_SCREENSHOTS=1."""
    from salad_core.paths import REPO_ROOT

    folders = [tmp_path_factory.mktemp("screenshots")]
    if os.environ.get("SALAD_SCREENSHOTS", "").strip().lower() in ("1", "true", "yes", "on"):
        folders.append(REPO_ROOT / "data" / "screenshots")
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def screenshot(page: sync_api.Page, shots: list[Path], name: str) -> None:
    browsing.screenshot(page, shots[0] / f"{name}.png")
    for folder in shots[1:]:
        shutil.copyfile(shots[0] / f"{name}.png", folder / f"{name}.png")


# ---------------------------------------------------------------------------------------------------------------
# Each page's main control


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
