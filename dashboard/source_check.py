"""The Training page's own speech: name the sources a Stage I run trains on (one per line, with the columns of a
`datasets` source), check them before the run, and see what the check found.

The check is `salad speech check … --json` (salad_core/train/speech_check.py), started as a background job with its
progress bar like a training job; its result is the JSON the job printed (`jobs.job_output`), read once the job is
done, never computed in a script run. The sources and columns are the start form's `speech` and `speech_columns`
fields: the form passes them to `salad train` as they are checked. Widget keys: `train_speech`,
`train_speech_columns`, `train_speech_limit`, `train_check` (the button) and `train_check_*` (what it shows).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard import job_panel, source_charts, views, widgets
from salad_core import jobs
from salad_core.errors import InputError
from salad_core.flags import field_comments
from salad_core.train.config import TrainConfig

JOB_NAME = "speech-check"
SOURCE_FIELDS = ("speech", "speech_columns")  # the TrainConfig fields this panel fills (the form shows no widget)
SOURCES_KEY, COLUMNS_KEY, LIMIT_KEY = "train_speech", "train_speech_columns", "train_speech_limit"
DEFAULT_LIMIT = 1000  # utterances read per source by a check from the page (0: all); a hub corpus can be huge
PLACEHOLDER = "hf:openslr/librispeech_asr:clean@train.100\n/data/podcasts/cuts.jsonl.gz:0.5"


def source_lines(text: str | None) -> list[str]:
    """The sources named in the text area, one per line (blank lines and surrounding spaces ignored). An
    `InputError` for a line with a comma: `--speech` is a list flag and splits there."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    for line in lines:
        if "," in line:
            raise InputError(f"speech source {line!r} holds a comma, where a list flag splits it. Fix: one source per "
                             "line, and rename a path that has a comma in it.")
    return lines


def form_values(sources: str | None, columns: str | None) -> dict[str, list[str] | None]:
    """The form's `speech` and `speech_columns` fields from the text area and the columns box (None: not given)."""
    pairs = [pair.strip() for pair in (columns or "").split(",") if pair.strip()]
    return {"speech": source_lines(sources) or None, "speech_columns": pairs or None}


def check_args(sources: str | None, columns: str | None, preset: str, limit: int | None) -> list[str]:
    """The `salad speech check` arguments for what the panel holds; `limit` 0 or None reads every utterance."""
    values = form_values(sources, columns)
    if not values["speech"]:
        raise InputError("No speech source named. Fix: write one per line above (a hub dataset as hf:ORG/NAME, a "
                         "folder saved by `datasets`, a Lhotse manifest or Shar folder, a JSONL manifest).")
    args = ["speech", "check"]
    for spec in values["speech"]:
        args += ["--speech", spec]
    if values["speech_columns"]:
        args += ["--speech-columns", ",".join(values["speech_columns"])]
    args += ["--preset", preset]
    return args + (["--limit", str(int(limit))] if limit else []) + ["--json"]


def panel_args(preset: str) -> list[str]:
    state = st.session_state
    return check_args(state.get(SOURCES_KEY), state.get(COLUMNS_KEY), preset, state.get(LIMIT_KEY))


def sources_panel(preset: str, start: Callable[[list[str], str], None]) -> None:
    """The sources, the columns, the check button (`start(args, job name)` starts the job) and the latest check."""
    about = field_comments(TrainConfig)
    st.session_state.setdefault(LIMIT_KEY, DEFAULT_LIMIT)
    latest = jobs.list_jobs(JOB_NAME)
    with st.expander("Train on your own speech: name its sources, and check them before a run",
                     expanded=bool(st.session_state.get(SOURCES_KEY) or latest)):
        st.text_area("speech: one source per line, SOURCE[:WEIGHT]", key=SOURCES_KEY, placeholder=PLACEHOLDER,
                     help=f"{about['speech']}. Left empty, the run trains on the preset's world.")
        left, right = st.columns([3, 1])
        left.text_input("speech_columns", key=COLUMNS_KEY, placeholder="text=sentence,doc=chapter_id",
                        help=about["speech_columns"])
        right.number_input("utterances checked per source (0: all)", min_value=0, step=100, key=LIMIT_KEY)
        st.caption(f"The check reads the sources as training would and audits them against `{preset}`'s evaluation "
                   "tasks; the run started below trains on them.")
        running = bool(latest) and latest[0]["state"] == "running"
        if st.button("Check these sources", key="train_check", disabled=running,
                     help="one check at a time: stop the running one to start another" if running else None):
            try:
                args = panel_args(preset)
            except InputError as err:
                st.error(str(err))
            else:
                start(args, JOB_NAME)
        if latest:
            show_check(latest[0], preset)


def show_check(job: dict, preset: str) -> None:
    """The newest check: its progress while it runs, its result once done, its error if it failed."""
    if job["state"] == "running":
        watch_check(job["job_id"])
    elif job["state"] == "done":
        result = jobs.job_output(job["job_id"])
        if result is None:
            st.warning(f"The check `{job['job_id']}` ended without printing its result. Fix: run it again.")
        else:
            show_result(result, job, preset)
    elif job["state"] == "failed":
        why = (job["error"] or "no error output").strip().splitlines()[-1]  # a salad error is its last line
        st.error(f"The check `salad {' '.join(job['args'])}` failed: {why} (its log: "
                 f"`{jobs.jobs_dir() / job['job_id'] / 'stderr.log'}`)")
    else:
        st.caption(f"The check `{job['job_id']}` was stopped before it finished.")


@st.fragment(run_every=2)
def watch_check(job_id: str) -> None:
    """The running check's progress bar, refreshed every 2 s; the page reruns once it ends, to show its result."""
    job = jobs.job_status(job_id)
    if job["state"] != "running":
        st.rerun(scope="app")
    job_panel.show_job(job, "train_check")


def show_result(result: dict, job: dict, preset: str) -> None:
    """Per source: a table, the hours kept and dropped, what is left out and why, the problems quoted, the audit."""
    read = (f"only the first {result['limit']} utterances of each source were read" if result.get("limit")
            else "every utterance was read")
    st.markdown(f"**The check** `salad {' '.join(job['args'])}` (finished {job['finished_at']}): {read}, against "
                f"the tasks of `{result.get('preset', preset)}`. Not checked: {result['not_checked']}.")
    try:
        same = job["args"] == panel_args(preset)
    except InputError:  # the box names no source now
        same = False
    if not same:
        st.caption("The sources, columns, limit or preset have changed since: check them again to see theirs.")
    widgets.table(source_charts.source_table(result), "train_check_sources", name="speech-check-sources")
    left, right = st.columns(2)
    widgets.chart(source_charts.hours_bars(result), "train_check_hours", name="speech-check-hours", where=left)
    if source_charts.drop_frame(result).empty:
        right.caption("Nothing left out: every utterance read decodes, and no document states an evaluation fact.")
    else:
        widgets.chart(source_charts.drop_bars(result), "train_check_drops", name="speech-check-drops", where=right)
    problems = source_charts.problem_table(result)
    if not problems.empty:
        st.markdown("**Problems**, the first few of each kind per source, as a run would report them:")
        widgets.table(problems, "train_check_problems", name="speech-check-problems")
    st.markdown("**Leak audit**: eval facts of each task stated in each source (documents that state one are left "
                "out of training).")
    widgets.table(views.audit_pivot(result["audit"]), "train_check_audit", name="speech-check-audit")
