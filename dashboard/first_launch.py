"""First launch: when the store holds no evaluation run, say so and start (once) the default evaluation job.

The job is `salad eval --limit N --probe-limit 5` (N from `$SALAD_FIRST_LIMIT`, default 15: about four minutes on 2 cores), run detached by `salad_core.jobs` with
`SALAD_STORE` pointing at the store the dashboard shows. Its progress bar and ETA refresh every 2 s in a fragment that
reruns the whole app when the job ends. `SALAD_NO_AUTOSTART=1` turns the automatic start off (the button stays).
The guard against a double start is the jobs folder: any earlier job named `first-eval` counts, and
`jobs.start_once` serialises sessions that race.
"""

from __future__ import annotations

import os

import streamlit as st

from dashboard import data, job_panel
from salad_core import jobs
from salad_core.eval.config import EvalConfig

JOB_NAME = "first-eval"
MINI_JOB = "train-mini"
MINI_ARGS = ["train", "--preset", "mini"]
DEFAULT_LIMIT = 15
PROBE_LIMIT = 5


def first_limit() -> int:
    raw = os.environ.get("SALAD_FIRST_LIMIT", str(DEFAULT_LIMIT))
    if not raw.strip().isdigit() or int(raw) <= 0:
        raise ValueError(f"SALAD_FIRST_LIMIT must be a positive whole number of items per task, got {raw!r}. "
                         f"Fix: e.g. SALAD_FIRST_LIMIT={DEFAULT_LIMIT}, or unset it.")
    return int(raw)


def autostart_enabled() -> bool:
    return os.environ.get("SALAD_NO_AUTOSTART", "").strip().lower() not in ("1", "true", "yes", "on")


def render(store_path: str) -> None:
    """The no-results panel: explanation, job start (automatic once, or by button) and the live job view."""
    st.header("No results yet")
    st.info(f"The results store `{store_path}` holds no evaluation run, so there is nothing to diagnose yet. "
            "The default evaluation scores every task on text and speech with the original LLM, the adapted model "
            "and the ASR cascade, and writes the results here.")
    try:
        args = ["eval", *EvalConfig(limit=first_limit(), probe_limit=PROBE_LIMIT).to_argv()]
    except ValueError as err:
        st.error(str(err))
        return
    env = {"SALAD_STORE": store_path}
    earlier = jobs.list_jobs(JOB_NAME)
    job_id = earlier[0]["job_id"] if earlier else None
    if job_id is None and autostart_enabled():
        job_id = jobs.start_once(args, JOB_NAME, env=env)
    elif job_id is None:
        st.caption("Automatic start is off (SALAD_NO_AUTOSTART is set).")
    state = jobs.job_status(job_id)["state"] if job_id else None
    label = f"Start the evaluation: salad {' '.join(args)}"
    if st.button(label, key="first_launch_start", disabled=state == "running"):
        job_id = jobs.start_once(args, JOB_NAME, again=True, env=env)
        state = "running"
    if state == "running":
        watch(job_id)
    elif job_id is not None:
        show_ended(job_id)
    st.divider()
    offer_mini_world(store_path)


def offer_mini_world(store_path: str) -> None:
    """One click: build the mini world (text, speech, its LM) if needed, then train Stage I on it, as a job.

    The job's final evaluation lands in this store; the gap page then shows it by default (`default_run`).
    """
    st.subheader("Train on the mini world")
    st.markdown("A small six-domain world (capitals, elements, animals, arithmetic, calendar, stories) whose natural "
                "speech covers only three domains, with its own tiny LM and the frozen Whisper tiny.en encoder. One "
                "click builds it and runs SALAD's Stage I on this CPU; progress and ETA show below, stage by stage.")
    running = [j for j in jobs.list_jobs(MINI_JOB) if j["state"] == "running"]
    if st.button("Build and train the mini world", key="first_launch_mini", disabled=bool(running)):
        try:
            running = [{"job_id": jobs.start_job(MINI_ARGS + ["--db", store_path], MINI_JOB)}]
        except jobs.JobError as err:
            st.error(str(err))
    if running:
        watch(running[0]["job_id"])


def default_run(runs) -> str:
    """The evaluation run a page opens on: the newest finished evaluation of a trained model, else the newest
    finished run, else the newest run. `runs` is the store's evaluation runs, newest first, with their configs."""
    done = runs[runs["status"] == "done"]
    trained = [r["run_id"] for _, r in done.iterrows() if isinstance(r.get("config"), dict) and r["config"].get("model_path")]
    if trained:
        return trained[0]
    return done["run_id"].iloc[0] if not done.empty else runs["run_id"].iloc[0]


def running_job() -> str | None:
    """The first evaluation job while it runs (its partial results already show on the result pages)."""
    earlier = jobs.list_jobs(JOB_NAME)
    if earlier and jobs.job_status(earlier[0]["job_id"])["state"] == "running":
        return earlier[0]["job_id"]
    return None


@st.fragment(run_every=2)
def watch(job_id: str) -> None:
    """Progress bar + ETA of a running job; when it ends, rerun the app (which then shows results or the failure)."""
    status = jobs.job_status(job_id)
    if status["state"] != "running":
        data.clear()
        st.rerun(scope="app")
    job_panel.progress_bar(status["progress"])
    st.caption(f"Job `{job_id}` · logs in `{jobs.jobs_dir() / job_id}`")


def show_ended(job_id: str) -> None:
    status = jobs.job_status(job_id)
    if status["state"] == "done":
        st.warning(f"The evaluation job `{job_id}` finished, but this store holds no evaluation run: it may have "
                   "written to another store. Its last output:")
        st.code(jobs.job_log(job_id, "stdout") or "(no output)")
    else:
        st.error(f"The evaluation job `{job_id}` {status['state']}. Fix the cause below, then start it again.")
        st.code(status["error"] or "(no error output)")
