"""Every page as a user meets it, headless (Streamlit AppTest): each says what it shows, every chart has axis titles
with units, a legend, a PNG button and its data as CSV, every table a CSV download; and on stores that hold nothing
yet (a fresh store, a model whose runs hold nothing, a round whose Stage II failed) each page names the next step.
No job is started: the first launch's automatic start is off (`isolated_app`), and no button that starts one is
pressed."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from salad_core.paths import REPO_ROOT
from salad_core.store import Store
from tests.dashboard_store import (
    PAGES,
    build_full_store,
    build_round_without_stage2,
    build_runs_without_results,
    fixture_run,
    round_model,
)

APP = str(REPO_ROOT / "dashboard" / "app.py")
# a word of each page's definitions, which its opening caption must carry
DEFINES = {"Gap per task": "misalignment", "Forgetting & dynamics": "nats per token", "Misalignment explorer": "KL",
           "Training": "nats per token", "Active selection": "P_target", "Side-by-side demo": "probability"}

pytestmark = pytest.mark.usefixtures("isolated_app")


@pytest.fixture(scope="module")
def full_store(tmp_path_factory):
    return build_full_store(tmp_path_factory.mktemp("full"))


def open_page(page: str, store_path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["store_path"] = str(store_path)
    at.run()
    return at.switch_page(page).run()


def use_main_control(at: AppTest, title: str, store: Store) -> AppTest:
    """What a user does first on the full store: pick the run with items (Gap), the model with a round (Active
    selection), another task (Forgetting & dynamics); other pages already show their main view."""
    if title == "Gap per task":
        at.sidebar.selectbox(key="sidebar_run").select(fixture_run(store))
    elif title == "Active selection":
        at.selectbox(key="sel_run").select(round_model(store))
    elif title == "Forgetting & dynamics":
        at.selectbox(key="dyn_task").select("mini-capitals")
    return at.run()


def key_of(element) -> str:
    """The user key of a chart (AppTest does not expose it; the element id ends with it)."""
    return element.proto.id.rsplit("-", 1)[-1]


def label_problems(spec: dict) -> list[str]:
    """Axes that a trace is drawn on but that have no title, and a hidden legend."""
    layout = spec.get("layout", {})
    problems = [] if layout.get("showlegend") else ["legend hidden"]
    for trace in spec.get("data", []):
        for letter in ("x", "y"):
            axis = f"{letter}axis{trace.get(f'{letter}axis', letter)[1:]}"
            title = layout.get(axis, {}).get("title", {})
            if not (title.get("text") if isinstance(title, dict) else title):
                problems.append(f"{axis} of {trace.get('name')!r} has no title")
    return sorted(set(problems))


def errors(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.exception] + [e.value for e in at.error]


@pytest.mark.parametrize("page, title", [(p, t) for p, _, t in PAGES])
def test_every_page_defines_its_quantities_and_exports_its_charts_and_tables(full_store, page, title):
    at = use_main_control(open_page(page, full_store.path), title, full_store)
    assert not errors(at), errors(at)
    assert [t.value for t in at.title] == [title]
    assert DEFINES[title] in at.caption[0].value  # the intro, right under the title
    downloads = {d.key: d.proto.label for d in at.get("download_button")}
    for chart in at.get("plotly_chart"):
        key = key_of(chart)
        assert not label_problems(json.loads(chart.proto.spec)), (key, label_problems(json.loads(chart.proto.spec)))
        assert json.loads(chart.proto.config)["toImageButtonOptions"]["format"] == "png"
        assert f"{key}_csv" in downloads, key
    # a table's element carries no key: each one is followed by its own CSV button
    assert list(downloads.values()).count("Table (CSV)") == len(at.dataframe)


def test_the_full_store_fills_the_pages(full_store):
    """The store the browser test uses shows each page's main view, not an empty state."""
    shown = {title: use_main_control(open_page(page, full_store.path), title, full_store) for page, _, title in PAGES[:5]}
    counts = {title: len(at.get("plotly_chart")) for title, at in shown.items()}
    assert counts["Gap per task"] == 2 and counts["Forgetting & dynamics"] == 7
    assert counts["Training"] == 5 and counts["Active selection"] == 5  # preview, map, bars, allocation, comparison
    assert "12 of 12 items" in [c.value for c in shown["Gap per task"].caption]
    assert counts["Misalignment explorer"] == 0  # its model's hidden states are not computed: the page offers to


def next_steps(at: AppTest) -> str:
    return " ".join([i.value for i in at.info] + [c.value for c in at.caption] + [c.value for c in at.code]
                    + [b.label for b in at.button])


FRESH = {"Gap per task": "Start the evaluation: salad eval", "Forgetting & dynamics": "Start one on the Training page",
         "Misalignment explorer": "salad train --preset nano", "Training": "Build and train the mini world",
         "Active selection": "salad train --preset mini"}


@pytest.mark.parametrize("page, title", [(p, t) for p, _, t in PAGES[:5]])
def test_a_fresh_store_names_the_next_step_on_every_page(tmp_path, page, title):
    at = open_page(page, tmp_path / "fresh.duckdb")
    assert not errors(at), errors(at)
    assert FRESH[title] in next_steps(at)


NOTHING_YET = {"Gap per task": "ended (failed) without writing a result. Its error: RuntimeError: the TTS engine",
               "Forgetting & dynamics": "salad train --preset mini --eval-every 50",
               "Misalignment explorer": "This model has no paired items to look at",
               "Training": "Start a new run with the form below",
               "Active selection": "No selection round from this model yet"}


@pytest.mark.parametrize("page, title", [(p, t) for p, _, t in PAGES[:5]])
def test_a_model_whose_runs_hold_nothing_yet_names_the_next_step(tmp_path, page, title):
    store = build_runs_without_results(tmp_path)
    at = open_page(page, store.path)
    assert not at.exception, at.exception
    assert NOTHING_YET[title] in next_steps(at)
    if title == "Gap per task":
        assert f"salad eval --db {store.path}" in next_steps(at)


def test_a_round_without_stage2_says_how_to_get_one(tmp_path):
    store = build_round_without_stage2(tmp_path)
    stage1 = store.runs("train").set_index("run_id")["config"].map(lambda c: c.get("stage")).eq(1).idxmax()
    at = open_page("../pages/selection.py", store.path)
    assert not errors(at), errors(at)
    assert "No Stage II run from this model has a final evaluation yet" in next_steps(at)
    assert f"salad select --train --from {stage1} --db {store.path}" in next_steps(at)
    assert len(at.get("plotly_chart")) >= 4  # the round itself still shows: preview, map, bars, allocation
