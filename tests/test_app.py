"""The dashboard run headless (Streamlit AppTest): the Gap page on the fixture store, and the first launch on an empty
store (automatic job start switched off with SALAD_NO_AUTOSTART=1; a real job is started by the test instead)."""

from __future__ import annotations

import textwrap
import time

import pytest
from streamlit.testing.v1 import AppTest

from salad_core import jobs
from salad_core.eval.vocabulary import ALL_TASKS
from salad_core.paths import REPO_ROOT
from tests.conftest import fixture_run

APP = str(REPO_ROOT / "dashboard" / "app.py")


pytestmark = pytest.mark.usefixtures("isolated_app")


def run_app(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def test_gap_page_on_the_fixture_store(fixture_store, monkeypatch):
    monkeypatch.setenv("SALAD_STORE", str(fixture_store.path))
    at = run_app()
    assert not at.exception
    run_id = fixture_run(fixture_store)
    assert at.sidebar.selectbox(key="sidebar_run").value == run_id and at.session_state["run_id"] == run_id
    assert texts(at.title) == ["Gap per task"]
    banner = " ".join(w.value for w in at.warning)
    assert "Speech accuracy (0.333) is no better than chance (0.250" in banner
    assert "the adapter is untrained (Stage I training comes next)" in banner
    shown = {m.label: m.value for m in at.metric}
    assert shown["speech · adapted"] == "0.333" and shown["gap"] == "+50.0 pts"
    assert shown["forgetting"] == "+0.0 pts" and shown["M (KL, speech vs text)"] == "2.71"
    assert len(at.get("plotly_chart")) == 2
    assert "12 of 12 items" in texts(at.caption)


def test_item_filters_and_audio_player(fixture_store):
    at = run_app(store_path=str(fixture_store.path))  # the sidebar's store path, set through session state
    assert not at.exception
    at.selectbox(key="gap_task").select("capitals")
    at.selectbox(key="gap_outcome").select("wrong").run()
    assert "4 of 12 items" in texts(at.caption)
    item = at.selectbox(key="gap_item")
    assert item.options[0].startswith("capitals@1/2")
    item.select("capitals@1/4").run()
    assert not at.exception
    assert len(at.get("audio")) == 1
    assert any("The capital of Canada his" in m.value for m in at.markdown)
    assert any("tone · voice 440hz" in c for c in texts(at.caption))


def test_a_missing_audio_file_is_named(fixture_store):
    fixture_store.upsert_audio([{"item_id": "capitals@1/0", "engine": "tone", "voice": "440hz", "speed": 1.0,
                                 "path": "/nonexistent/capitals-0.wav"}])
    at = run_app(store_path=str(fixture_store.path))
    assert not at.exception and len(at.get("audio")) == 0
    assert any("No audio for this item: no audio file at /nonexistent/capitals-0.wav" in c for c in texts(at.caption))


def test_no_chance_banner_when_speech_beats_chance(fixture_store):
    run_id = fixture_run(fixture_store)
    fixture_store.add_metrics(run_id, [{"task": t, "metric": "speech_acc", "value": 0.8, "ci_low": 0.7,
                                        "ci_high": 0.9, "n": 6} for t in ("capitals", "symbols", ALL_TASKS)])
    at = run_app(store_path=str(fixture_store.path))
    assert not at.exception and not at.warning
    assert {m.label: m.value for m in at.metric}["speech · adapted"] == "0.800"


def test_first_launch_says_there_are_no_results(tmp_path):
    at = run_app()
    assert not at.exception
    assert texts(at.header) == ["No results yet"]
    assert "holds no evaluation run" in at.info[0].value and str(tmp_path / "data" / "salad.duckdb") in at.info[0].value
    assert "Automatic start is off (SALAD_NO_AUTOSTART is set)." in texts(at.caption)
    button = at.button(key="first_launch_start")
    assert button.label == "Start the evaluation: salad eval --limit 15 --probe-limit 5" and not button.disabled
    assert jobs.list_jobs() == []  # nothing started behind our back
    assert at.session_state["run_id"] is None


def test_first_launch_rejects_a_bad_limit(monkeypatch):
    monkeypatch.setenv("SALAD_FIRST_LIMIT", "lots")
    at = run_app()
    assert not at.exception
    assert "SALAD_FIRST_LIMIT must be a positive whole number" in at.error[0].value


COUNTER = """
    import sys, time
    from salad_core.progress import Progress
    with Progress(int(sys.argv[1]), "scoring items") as progress:
        for i in range(int(sys.argv[1])):
            time.sleep(0.05)
            progress.update(message="capitals")
    sys.exit(int(sys.argv[2]))
"""


@pytest.fixture
def counter_module(tmp_path, monkeypatch) -> str:
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "salad_first_counter.py").write_text(textwrap.dedent(COUNTER))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "mods"))
    return "salad_first_counter"


def wait_for_progress(job_id: str) -> float:
    """Wait until the job has reported progress; returns the deadline it had (for further waits)."""
    deadline = time.monotonic() + 20
    while not (jobs.job_status(job_id)["progress"] or {}).get("done"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return deadline


def test_first_launch_watches_a_running_job_then_reports_its_end(counter_module):
    job_id = jobs.start_job(["60", "0"], "first-eval", module=counter_module)
    deadline = wait_for_progress(job_id)
    at = run_app()
    assert not at.exception
    bar = at.get("progress")[0]
    assert bar.proto.text.startswith("scoring items: ") and "/ 60" in bar.proto.text and "ETA" in bar.proto.text
    assert at.button(key="first_launch_start").disabled
    while jobs.job_status(job_id)["state"] == "running":
        assert time.monotonic() < deadline + 20
        time.sleep(0.1)
    at.run()
    assert not at.exception and not at.get("progress")
    assert f"The evaluation job `{job_id}` finished, but this store holds no evaluation run" in at.warning[0].value


def test_first_launch_shows_a_failed_job(counter_module):
    job_id = jobs.start_job(["1", "2"], "first-eval", module=counter_module)
    deadline = time.monotonic() + 20
    while jobs.job_status(job_id)["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    at = run_app()
    assert not at.exception
    assert f"`{job_id}` failed" in at.error[0].value
    assert not at.button(key="first_launch_start").disabled  # a manual restart is offered


def test_first_view_offers_to_build_and_train_the_mini_world(tmp_path, monkeypatch, counter_module):
    started, real_start = [], jobs.start_job

    def record(args, name, **kw):  # runs the counter instead of salad, so the page has a real job to watch
        started.append((args, name))
        return real_start(["5", "0"], name, module=counter_module)

    monkeypatch.setattr(jobs, "start_job", record)
    at = run_app()
    assert not at.exception
    assert "Train on the mini world" in texts(at.subheader)
    at.button(key="first_launch_mini").click().run()
    assert not at.exception
    assert started == [(["train", "--preset", "mini", "--db", str(tmp_path / "data" / "salad.duckdb")], "train-mini")]


def test_first_view_shows_the_progress_of_a_running_mini_job(counter_module):
    job_id = jobs.start_job(["200", "0"], "train-mini", module=counter_module)
    wait_for_progress(job_id)
    at = run_app()
    assert not at.exception
    assert at.button(key="first_launch_mini").disabled
    assert any("/ 200" in bar.proto.text and "ETA" in bar.proto.text for bar in at.get("progress"))
    jobs.stop_job(job_id)


def test_pages_open_on_the_newest_evaluation_of_a_trained_model():
    import pandas as pd

    from dashboard.first_launch import default_run

    runs = pd.DataFrame({"run_id": ["eval-smol-new", "eval-mini", "eval-smol-old", "eval-broken"],
                         "status": ["done", "done", "done", "failed"],
                         "config": [{"model_path": None}, {"model_path": "data/runs/t/final"}, {}, {"model_path": "x"}]})
    assert default_run(runs) == "eval-mini"
    assert default_run(runs.drop(index=1)) == "eval-smol-new"
    assert default_run(runs.iloc[[3]]) == "eval-broken"
