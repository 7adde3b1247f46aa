"""The training chart builders (trace values) and the Training / Forgetting & dynamics pages run headless (AppTest) on
the synthetic sweep store of tests/test_analysis.py and on an empty store. Jobs: `jobs.start_job` is replaced by a
recorder where only the command line matters; the live view watches a real job running a small progress script."""

from __future__ import annotations

import shutil
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard import training_charts as charts
from salad_core import analysis, fitting, jobs
from salad_core.paths import REPO_ROOT
from salad_core.train.config import TrainConfig
from salad_core.eval.vocabulary import ALL_TASKS, HEADLINE_METRICS
from tests.test_analysis import TOKENS_PER_STEP, build_training_store

APP = str(REPO_ROOT / "dashboard" / "app.py")
TRAINING, DYNAMICS = "../pages/training.py", "../pages/dynamics.py"


@pytest.fixture(scope="module")
def sweep_template(tmp_path_factory):
    return build_training_store(tmp_path_factory.mktemp("sweep") / "salad.duckdb")


@pytest.fixture
def store(tmp_path, sweep_template):
    path = tmp_path / "salad.duckdb"
    shutil.copyfile(sweep_template.path, path)
    return sweep_template.__class__(path)


@pytest.fixture
def points(sweep_template) -> pd.DataFrame:
    runs = sweep_template.runs("train")
    metrics = pd.concat([sweep_template.metrics(r) for r in runs["run_id"]], ignore_index=True)
    return analysis.checkpoints(runs, metrics)


pytestmark = pytest.mark.usefixtures("isolated_app")


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    """The first table shown with this column (AppTest does not expose a dataframe's key)."""
    return next(f.value for f in at.dataframe if column in f.value.columns)


def open_page(page: str, store_path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["store_path"] = str(store_path)
    at.run()
    return at.switch_page(page).run()


# ---------------------------------------------------------------------------------------------------------------
# Chart builders


def test_loss_and_lr_curves(sweep_template):
    steps = sweep_template.train_steps(sweep_template.runs("train")["run_id"].iloc[0])
    fig = charts.loss_curves(steps)
    names = [t.name for t in fig.data]
    assert names == ["total loss", "KL to the teacher", "NLL", "text-only replay step"]  # no ctc recorded
    assert list(fig.data[0].y) == pytest.approx(steps["loss"].tolist())
    assert list(fig.data[3].x) == list(range(3, 101, 3))
    assert fig.layout.xaxis.title.text == "optimizer step" and "nats" in fig.layout.yaxis.title.text
    lr = charts.lr_curves(steps)
    assert [t.name for t in lr.data] == ["adapter", "LLM"] and max(lr.data[0].y) == pytest.approx(1e-3)
    assert lr.data[1].y[-1] < lr.data[1].y[50]  # decays at the end
    units = charts.unit_curves(steps)
    assert [t.name for t in units.data] == [charts.UNITS["tokens"]]  # no alignment aid: no CTC targets
    assert list(units.data[0].y) == steps["tokens"].tolist()


def test_the_ctc_warm_up_counts_ctc_targets_on_a_line_of_their_own():
    steps = pd.DataFrame({"step": [1, 2, 3, 4], "tokens": [0, 0, 30, 61], "ctc_targets": [12, 25, 36, 48],
                          "loss": [2.0, 1.8, 3.1, 2.9], "ctc": [2.0, 1.8, 1.7, 1.6]})
    units = charts.unit_curves(steps)
    assert [t.name for t in units.data] == [charts.UNITS["tokens"], charts.UNITS["ctc_targets"]]
    assert list(units.data[0].y) == [0, 0, 30, 61] and list(units.data[1].y) == [12, 25, 36, 48]
    assert units.layout.yaxis.title.text == "count (cumulative)"
    assert "per CTC target" in charts.loss_curves(steps).layout.yaxis.title.text


def test_dynamics_curves_colour_runs_by_alpha_with_fits(points):
    fits = fitting.fit_power_laws(points, "tokens", "M")
    fig = charts.dynamics_curves(points, "M", "tokens", fits)
    runs = [t for t in fig.data if t.mode == "lines+markers"]
    overlays = [t for t in fig.data if t.mode == "lines"]
    assert len(runs) == 4 and len(overlays) == 2  # α = 0 has no saturating fit
    ones = [t for t in runs if t.name.endswith("α = 1")]
    others = [t for t in runs if not t.name.endswith("α = 1")]
    assert len(ones) == 2 and ones[0].line.color == ones[1].line.color
    assert others and all(t.line.color != ones[0].line.color for t in others)  # run order in the store is not fixed
    fit_one = next(t for t in overlays if "α = 1:" in t.name)
    assert np.allclose(fit_one.y, fits[1.0].predict(np.array(fit_one.x)))
    assert fit_one.x[0] == pytest.approx(10 * TOKENS_PER_STEP) and fit_one.line.dash == "dash"
    assert fig.layout.xaxis.title.text == charts.X_TITLES["tokens"] and fig.layout.yaxis.title.text.startswith("M:")


def test_fit_scatter_shows_r2_and_loo_r2(points):
    fit = analysis.scatter_fits(points)["speech_vs_log_M"]
    fig = charts.fit_scatter(points, "M", "speech_acc", fit, log_x=True)
    groups = [t for t in fig.data if t.mode == "markers"]
    assert [t.name for t in groups] == ["α = 0", "α = 0.5", "α = 1"] and sum(len(t.x) for t in groups) == 32
    line = fig.data[-1]
    assert line.name == f"fit: R² = {fit.r2:.2f}, LOO R² = {fit.loo_r2:.2f} (n = 32)"
    assert np.allclose(line.y, fit.intercept + fit.slope * np.log(line.x))
    assert fig.layout.xaxis.type == "log" and "log scale" in fig.layout.xaxis.title.text


def test_efficiency_curves_mark_the_target(points):
    eff = analysis.data_efficiency(points, 1.0, 0.0)
    fig = charts.efficiency_curves(points, eff)
    marks = fig.data[-1]
    assert marks.name == "first reaches the target" and list(marks.y) == [eff.target] * 2
    assert list(marks.x) == pytest.approx([eff.reference_hours, eff.hours])
    assert fig.layout.shapes[0].y0 == pytest.approx(eff.target)
    assert fig.layout.xaxis.title.text == "natural speech seen (hours)"


# ---------------------------------------------------------------------------------------------------------------
# Pages


def test_training_page_on_the_sweep(store):
    at = open_page(TRAINING, store.path)
    assert not at.exception
    assert [t.value for t in at.title] == ["Training"]
    runs = store.runs("train")
    assert at.selectbox(key="train_run").value == runs["run_id"].iloc[0]
    assert len(at.get("plotly_chart")) == 5  # loss, lr, accuracy, F and M, what it trained on
    table = frame_with(at, "llm_mode")
    assert len(table) == 4 and sorted(table["alpha"]) == [0.0, 0.5, 1.0, 1.0]
    assert sorted(table["planned_steps"]) == [60, 60, 100, 100]  # the runs' plans
    assert {m.label: m.value for m in at.metric}["step"] == "100"


def test_a_failed_run_offers_resume(store, started):
    failed = store.runs("train").query("status == 'failed'")["run_id"].iloc[0]
    at = open_page(TRAINING, store.path)
    at.selectbox(key="train_run").select(failed).run()
    assert not at.exception
    assert f"Run `{failed}` failed and no job is training it." in at.warning[0].value
    at.button(key="train_resume").click().run()
    assert started == [(["train", "--resume", failed, "--db", str(store.path)], "train")]


def submit(at: AppTest) -> AppTest:
    return next(b for b in at.button if b.label == "Start training").click().run()


def cli_config(args: list[str]) -> TrainConfig:
    """The config `salad <args>` would train."""
    from salad_core.cli import build_parser
    from salad_core.cli_training import train_config

    return train_config(build_parser().parse_args(args))


def test_the_form_left_alone_starts_exactly_the_presets_recipe(store, started):
    at = submit(open_page(TRAINING, store.path))
    assert not at.exception
    assert started == [(["train", "--preset", "mini", "--db", str(store.path)], "train")]
    assert cli_config(started[0][0]) == cli_config(["train", "--preset", "mini"]) == TrainConfig.for_preset("mini")
    assert cli_config(started[0][0]).align == "ctc-soft"
    assert "as job `train-recorded`" in at.success[0].value


def test_the_form_starts_the_fields_it_was_given(store, started):
    at = open_page(TRAINING, store.path)
    at.number_input(key="train_alpha").set_value(0.5)
    at.selectbox(key="train_llm_mode").select("lora")
    at.number_input(key="train_budget_hours").set_value(2.5)
    at.selectbox(key="train_align").select("none")
    at.selectbox(key="train_kl_direction").select("reverse")  # one of the options behind the expander
    at = submit(at)
    assert not at.exception
    args = started[0][0]
    assert args[:3] == ["train", "--preset", "mini"] and args[-2:] == ["--db", str(store.path)]
    assert cli_config(args) == TrainConfig.for_preset("mini", alpha=0.5, llm_mode="lora", budget_hours=2.5,
                                                      align="none", kl_direction="reverse")


def test_the_form_offers_every_value_the_command_line_accepts(store):
    from salad_core.train.config import CHOICES

    at = open_page(TRAINING, store.path)
    assert at.selectbox(key="train_align").options == list(CHOICES["align"]) == ["none", "ctc", "ctc-soft"]
    assert at.selectbox(key="train_llm_mode").options == ["frozen", "lora", "full"]
    shown = {w.key.removeprefix("train_") for w in [*at.number_input, *at.selectbox, *at.text_input, *at.text_area]}
    stage1 = set(TrainConfig.__dataclass_fields__) - {"stage", "from_run", "round_id", "synthetic_prob"}
    # every Stage I field of `salad train` has its widget (preset: the picker above the form; the speech sources and
    # their columns: the panel above it, dashboard/source_check.py)
    assert stage1 <= shown


def test_choosing_a_preset_fills_the_form_with_its_recipe(store, started):
    at = open_page(TRAINING, store.path)
    assert at.selectbox(key="train_align").value == "ctc-soft" and at.selectbox(key="train_llm_mode").value == "full"
    at.selectbox(key="train_preset").select("nano").run()
    assert not at.exception
    nano = TrainConfig.for_preset("nano")
    assert at.selectbox(key="train_align").value == nano.align
    assert at.number_input(key="train_lr_llm").value == nano.lr_llm
    at = submit(at)
    assert cli_config(started[0][0]) == nano


def test_an_empty_store_offers_the_mini_world(tmp_path, started):
    path = tmp_path / "empty.duckdb"
    at = open_page(TRAINING, path)
    assert not at.exception and "holds no training run yet" in at.info[0].value
    at.button(key="train_mini").click().run()
    assert started == [(["train", "--preset", "mini", "--db", str(path)], "train-mini")]
    dyn = open_page(DYNAMICS, path)
    assert not dyn.exception and "No training run in this store yet" in dyn.info[0].value


PROGRESS = """
    import time
    from salad_core.progress import Progress
    with Progress(400, "training") as progress:
        for _ in range(400):
            time.sleep(0.05)
            progress.update(message="step")
"""


@pytest.fixture
def fake_train(tmp_path, monkeypatch):
    """Starts a real job named 'train' with these args, running a 20 s progress loop; returns once it reports."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "salad_fake_train.py").write_text(textwrap.dedent(PROGRESS))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "mods"))
    started = []

    def start(args: list[str]) -> str:
        job_id = jobs.start_job(args, "train", module="salad_fake_train")
        started.append(job_id)
        deadline = time.monotonic() + 20
        while not (jobs.job_status(job_id)["progress"] or {}).get("done"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return job_id

    yield start
    for job_id in started:
        jobs.stop_job(job_id)


def test_live_view_shows_progress_and_stops_the_job(store, fake_train):
    run_id = store.runs("train")["run_id"].iloc[0]
    store.finish_run(run_id, "running")  # as the trainer leaves it while it trains
    job_id = fake_train(["train", "--resume", run_id])
    at = open_page(TRAINING, store.path)
    assert not at.exception
    bar = at.get("progress")[0]
    assert bar.proto.text.startswith("training: ") and "/ 400" in bar.proto.text and "ETA" in bar.proto.text
    at.button(key=f"train_stop_{job_id}").click().run()
    assert jobs.job_status(job_id)["state"] == "stopped"
    assert f"Run `{run_id}` was interrupted and no job is training it." in at.warning[0].value


def test_a_fresh_job_is_matched_to_the_run_it_creates(store, fake_train):
    job_id = fake_train(["train", "--preset", "mini"])
    at = open_page(TRAINING, store.path)
    assert not at.exception and len(at.get("progress")) == 1  # no run yet: shown above the run picker
    newest = store.runs("train")["run_id"].iloc[0]
    assert not at.warning and at.selectbox(key="train_run").value == newest  # a finished run, not this job's
    run_id = store.create_run("train", {"alpha": 0.25, "preset": "mini"})
    (jobs.jobs_dir() / job_id / jobs.RUN_FILE).write_text(run_id)  # as the trainer notes it (jobs.note_run)
    st.cache_data.clear()
    at.run()
    assert not at.exception and at.selectbox(key="train_run").value == run_id
    assert len(at.get("progress")) == 1 and at.button(key=f"train_stop_{job_id}")
    assert "No training step recorded yet" in " ".join(c.value for c in at.caption)


def test_dynamics_page_on_the_sweep(store):
    at = open_page(DYNAMICS, store.path)
    assert not at.exception
    assert [t.value for t in at.title] == ["Forgetting & dynamics"]
    charts_shown = at.get("plotly_chart")
    assert len(charts_shown) == 7  # M, F, speech and text accuracy; two scatters; data efficiency
    assert at.selectbox(key="dyn_group").value == "every training run"  # the fixture's runs carry no tag
    fits = frame_with(at, "beta se")
    assert fits["alpha"].tolist() == [0.0, 0.5, 1.0] and fits["status"].iloc[1] == "ok"
    assert "α = 1 reaches α = 0's final speech accuracy" in " ".join(m.value for m in at.markdown)
    compare = frame_with(at, "task")
    assert compare["task"].tolist() == ["mini-capitals", "mini-elements", ALL_TASKS]
    assert {c.split(" · ")[0] for c in compare.columns[1:]} == set(HEADLINE_METRICS) and compare.shape[1] == 17
    at.radio(key="dyn_x").set_value("hours of natural speech").run()
    at.selectbox(key="dyn_task").select("mini-capitals").run()
    assert not at.exception and len(at.get("plotly_chart")) == 7


def test_the_form_shows_the_worlds_summary_and_its_leak_audit(store):
    from salad_core.world import build_world

    build_world("nano", progress=False)
    at = open_page(TRAINING, store.path)
    at.selectbox(key="train_preset").select("nano").run()
    assert not at.exception
    audit = frame_with(at, "selection pool")
    assert set(audit["task"]) == {f"nano-{d}" for d in ("capitals", "elements", "animals", "arithmetic", "calendar",
                                                         "stories")}
    assert (audit[["natural speech", "alignment transcripts", "selection pool"]] == 0).all().all()
    domains = frame_with(at, "eval facts")
    assert (domains["eval facts"] > 0).all() and set(domains["natural speech"]) == {"yes", "no"}


def test_smol_shows_the_broad_corpus_it_trains_on(store, monkeypatch):
    from salad_core import broad

    monkeypatch.setattr(broad, "is_built", lambda: False)  # as on a fresh clone: the first run builds it
    at = open_page(TRAINING, store.path)
    at.selectbox(key="train_preset").select("smol").run()
    assert not at.exception
    label = next(e.label for e in at.expander if "trains on" in e.label)
    assert label == "What `smol` trains on (the broad speech corpus): its speech, and the leak audit"
    assert any("salad world build --corpus broad" in c.value for c in at.caption)
    assert at.selectbox(key="train_align").value == "ctc-soft"
    assert at.number_input(key="train_ctc_warmup_steps").value == TrainConfig.for_preset("smol").ctc_warmup_steps
