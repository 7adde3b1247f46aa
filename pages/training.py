"""Training: start a Stage I run as a background job, watch its loss, learning rate and evaluation curves live (with
progress and ETA), stop or resume it, and list every training run with its config.

The work is `salad train …` run by `salad_core.jobs` (never inside the page), writing to the store this dashboard
shows (`--db`). A job is matched to its run by the run id its command notes when it creates the run
(`jobs.note_run`), or by `--resume RUN_ID` in its args. Widget keys start with `train_`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, job_panel, source_check, training_charts, views, widgets
from dashboard.first_launch import MINI_ARGS, MINI_JOB
from salad_core import jobs
from salad_core.analysis import checkpoints, run_alpha
from salad_core.flags import FieldSpec, field_specs
from salad_core.presets import PRESETS
from salad_core.runs import shown_status
from salad_core.store import Store, StoreError
from salad_core.train.config import CHOICES, TrainConfig

JOB_NAME = "train"
# Stage II runs start from the Active selection page (they continue a Stage I run on a selection round).
STAGE2_FIELDS = ("stage", "from_run", "round_id", "synthetic_prob")
MAIN_FIELDS = ("alpha", "align", "llm_mode", "max_steps", "budget_hours", "budget_tokens", "seed", "lr_adapter",
               "lr_llm", "replay_prob")
FRACTIONS = ("alpha", "replay_prob", "decay_fraction")  # fields that hold a fraction in [0, 1]
CONFIG_COLUMNS = ("preset", "alpha", "llm_mode", "lr_adapter", "lr_llm", "max_steps", "budget_hours", "budget_tokens",
                  "replay_prob", "align", "kl_direction", "kl_temperature", "seed")


@st.cache_data(ttl=2, show_spinner=False)
def train_steps(path: str, run_id: str) -> pd.DataFrame:
    return Store(path).train_steps(run_id)


def presets() -> list[str]:
    return ["mini", *sorted(set(PRESETS) - {"mini"})]


def form_fields() -> list[FieldSpec]:
    """Every Stage I field of `salad train`, the main ones first."""
    skip = ("preset", *STAGE2_FIELDS, *source_check.SOURCE_FIELDS)  # the sources: in their panel, above the form
    specs = [s for s in field_specs(TrainConfig, CHOICES) if s.name not in skip]
    return sorted(specs, key=lambda s: MAIN_FIELDS.index(s.name) if s.name in MAIN_FIELDS else len(MAIN_FIELDS))


def recipe_values(preset: str) -> dict:
    """The form's starting values: the preset's recipe (salad_core.train.config.PRESET_RECIPES) over the defaults."""
    recipe = TrainConfig.for_preset(preset).to_dict()
    return {f"train_{spec.name}": recipe[spec.name] for spec in form_fields()}


def apply_recipe() -> None:
    st.session_state.update(recipe_values(st.session_state["train_preset"]))


def field_input(spec: FieldSpec, where):
    """The widget of one config field, labelled with its name (flag, store column and chart label alike)."""
    key, label, text = f"train_{spec.name}", spec.name, spec.help or None
    if spec.choices:
        return where.selectbox(label, spec.choices, key=key, help=text)
    if spec.kind is str:
        return where.text_input(label, key=key, help=text)
    if spec.kind is int:
        return where.number_input(label, min_value=0, step=1, key=key, help=text)
    bounds = {"min_value": 0.0, "max_value": 1.0} if spec.name in FRACTIONS else {"min_value": 0.0}
    return where.number_input(label, format="%g", step=0.01 if spec.name in FRACTIONS else None, key=key, help=text,
                              **bounds)


@st.cache_data(ttl=60, show_spinner=False)
def world_info(preset: str) -> dict | None:
    """The summary of the world (or speech corpus) a preset trains on, when it is built here (None otherwise)."""
    from salad_core import broad
    from salad_core.presets import get_preset
    from salad_core.world import is_built, load_world

    if get_preset(preset).corpus == "broad":
        return broad.load_broad().info() if broad.is_built() else None
    name = get_preset(preset).world
    return load_world(name).info() if name and is_built(name) else None


def world_summary(preset: str) -> None:
    from salad_core.presets import get_preset

    info, corpus = world_info(preset), get_preset(preset).corpus
    what = f"the {corpus} speech corpus" if corpus else "the world"
    with st.expander(f"What `{preset}` trains on ({what}): its speech, and the leak audit"):
        if info is None:
            st.caption("Not built on this machine yet: the first run builds it (or `salad world build --corpus "
                       f"{corpus or preset}`).")
            return
        if corpus:
            st.caption(f"{info['speech_hours']:.2f} h of speech in {info['n_speech_docs']} documents, "
                       f"{len(info['train_voices'])} training voices (the evaluation voice {info['eval_voice']} is not "
                       "one); sentences per source: " + ", ".join(f"{k} {v}" for k, v in info["sources"].items())
                       + ". Every item of the built-in tasks (dev, test, few-shot) is a fact none of it may state.")
            widgets.table(views.world_tables(info)[1], "train_world_audit", name=f"{corpus}-audit")
            return
        domains, audit = views.world_tables(info)
        st.caption(f"{info['speech_hours']:.2f} h of natural speech in {info['n_speech_docs']} documents; "
                   "eval facts are the dev, test and few-shot items and are never stated in anything the speech "
                   "model trains on; train facts and each entity's other relations may be spoken.")
        widgets.table(domains, "train_world_domains", name=f"world-{info['name']}-domains")
        st.markdown("**Leak audit**: eval facts of each task stated in each training source (world/audit.py; "
                    "`salad world audit` prints it, `salad world export` writes the texts for your own check).")
        widgets.table(audit, "train_world_audit", name=f"world-{info['name']}-audit")


def start_form(store_path: str) -> None:
    preset = st.selectbox("Preset", presets(), key="train_preset", on_change=apply_recipe,
                          help="choosing a preset fills the form with its tested recipe")
    world_summary(preset)
    source_check.sources_panel(preset, start)
    for key, value in recipe_values(preset).items():
        st.session_state.setdefault(key, value)
    specs = form_fields()
    main = [s for s in specs if s.name in MAIN_FIELDS]
    with st.form("train_form"):
        st.markdown(f"**Start a Stage I run** on `{preset}`: the form starts from the preset's recipe, and the job "
                    "runs `salad train` with the fields that differ from it (and the speech sources named above, if "
                    "any). α = 1 is SALAD's distillation, α = 0 plain next-token training; a budget in hours or "
                    "tokens, when set, fixes the steps.")
        columns = st.columns(3)
        values = {s.name: field_input(s, columns[n % 3]) for n, s in enumerate(main)}
        with st.expander("Every other option"):
            columns = st.columns(3)
            values |= {s.name: field_input(s, columns[n % 3]) for n, s in enumerate(specs[len(main):])}
        if st.form_submit_button("Start training", type="primary"):
            values = {k: None if v == "" else v for k, v in values.items()}  # an empty text box leaves it unset
            try:
                values |= source_check.form_values(st.session_state.get(source_check.SOURCES_KEY),
                                                   st.session_state.get(source_check.COLUMNS_KEY))
                config = TrainConfig.for_preset(preset, **values)
            except ValueError as err:
                st.error(str(err))
                return
            start(["train", *config.to_argv(), "--db", store_path], JOB_NAME)


def start(args: list[str], name: str) -> None:
    try:
        job_id = jobs.start_job(args, name)
    except jobs.JobError as err:
        st.error(str(err))
        return
    st.session_state["train_started"] = f"Started `salad {' '.join(args)}` as job `{job_id}`."
    st.rerun()  # the page now shows the job's progress


def train_jobs() -> list[dict]:
    return [j for j in jobs.list_jobs() if j["name"] in (JOB_NAME, MINI_JOB)]


def resumed_run(job: dict) -> str | None:
    args = job["args"] or []
    return args[args.index("--resume") + 1] if "--resume" in args[:-1] else None


def job_for_run(run_id: str, found: list[dict]) -> dict | None:
    """The newest job that trains `run_id`: the job that created it (it notes its run, `jobs.note_run`), or one
    resuming it."""
    return next((j for j in found if run_id in (j.get("run_id"), resumed_run(j))), None)


def run_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Training runs with their main config fields as columns, and the steps each planned (a budget sets them)."""
    configs = [c if isinstance(c, dict) else {} for c in runs["config"]]
    table = runs[["run_id", "status", "created_at", "finished_at"]].copy()
    for key in CONFIG_COLUMNS:
        table[key] = [c.get(key) for c in configs]
    table["planned_steps"] = [p.get("max_steps") if isinstance(p, dict) else None for p in runs["plan"]]
    table["error"] = runs["error"]
    return table.reset_index(drop=True)


def no_runs(store_path: str) -> None:
    st.info(f"The store `{store_path}` holds no training run yet. Start one with the form below, or from a shell: "
            "`salad train --preset mini --alpha 1` (one run) or `salad sweep --preset mini` (the α grid). The mini "
            "world is a small multi-domain setting that trains on a laptop CPU in minutes; its first run builds it.")
    running = [j for j in jobs.list_jobs(MINI_JOB) if j["state"] == "running"]
    if st.button("Build and train the mini world", key="train_mini", disabled=bool(running)):
        start(MINI_ARGS + ["--db", store_path], MINI_JOB)


def run_charts(store_path: str, run_id: str, status: str) -> None:
    steps = train_steps(store_path, run_id)
    points = checkpoints(data.runs(store_path, "train"), data.metrics(store_path, run_id), steps)
    if steps.empty and points.empty:
        if status == "running":
            st.caption("No training step recorded yet; curves appear after the first optimizer step.")
        else:
            st.caption(f"Run `{run_id}` ended ({status}) before its first optimizer step, so it has no curves. "
                       "Start a new run with the form below.")
        return
    last = steps.iloc[-1] if not steps.empty else None
    if last is not None:
        cells = st.columns(5)
        cells[0].metric("step", int(last["step"]))
        cells[1].metric("loss", f"{last['loss']:.4g}")
        cells[2].metric("text tokens", f"{last['tokens']:,.0f}" if pd.notna(last["tokens"]) else "—")
        cells[3].metric("CTC targets", f"{last['ctc_targets']:,.0f}" if pd.notna(last["ctc_targets"]) else "—")
        cells[4].metric("text tokens / s", f"{last['tokens_per_s']:.0f}" if pd.notna(last["tokens_per_s"]) else "—")
    left, right = st.columns(2)
    widgets.chart(training_charts.loss_curves(steps), "train_loss", name=f"{run_id}-loss", where=left)
    widgets.chart(training_charts.lr_curves(steps), "train_lr", name=f"{run_id}-lr", where=right)
    if not points.empty:
        accuracy = training_charts.eval_curves(points, ("text_acc_base", "text_acc", "speech_acc"),
                                               "Accuracy on the dev slice", "accuracy (fraction)")
        kl = training_charts.eval_curves(points, ("F", "M"), "Forgetting F and misalignment M", "KL (nats/token)")
        widgets.chart(accuracy, "train_eval_acc", name=f"{run_id}-accuracy", where=left)
        widgets.chart(kl, "train_eval_kl", name=f"{run_id}-f-m", where=right)
    widgets.chart(training_charts.unit_curves(steps), "train_units", name=f"{run_id}-units", where=left)


def run_view(store_path: str, run_id: str) -> None:
    runs = data.runs(store_path, "train")
    job = job_for_run(run_id, train_jobs())
    run = runs.set_index("run_id").loc[run_id]
    live_job = job is not None and job["state"] == "running"
    status = "running" if live_job else shown_status("train", run_id, run["status"])
    if live_job:
        job_panel.show_job(job, "train")
    elif status == "running":
        st.info(f"Run `{run_id}` is training in a process started outside the dashboard; its curves update below.")
    else:
        if status != "done":
            why = "was interrupted" if status == "interrupted" else "failed"
            st.warning(f"Run `{run_id}` {why} and no job is training it." + (
                "" if job is None or not job.get("error") else f" Last error: {job['error'][-400:]}"))
            if st.button("Resume from its last checkpoint", key="train_resume"):
                start(["train", "--resume", run_id, "--db", store_path], JOB_NAME)
    run_charts(store_path, run_id, status)


@st.fragment(run_every=2)
def watch_new_job(store_path: str, job_id: str) -> None:
    """A job with no run in the store yet (e.g. building the mini world); the page reruns once its run appears."""
    job = jobs.job_status(job_id)
    runs = data.runs(store_path, "train")
    if job["state"] != "running" or any(job_for_run(r, [job]) for r in runs["run_id"]):
        data.clear()
        st.rerun(scope="app")
    job_panel.show_job(job, "train")


@st.fragment(run_every=2)
def live_view(store_path: str, run_id: str) -> None:
    """The run's view, refreshed every 2 s while its job runs; the whole page reruns once the job ends."""
    job = job_for_run(run_id, train_jobs())
    if job is None or job["state"] != "running":
        data.clear()
        st.rerun(scope="app")
    run_view(store_path, run_id)


def pick_run(runs: pd.DataFrame) -> str:
    """The run picker; a run that appears while the page is open (a job just created it) gets selected."""
    ids = runs["run_id"].tolist()
    known = st.session_state.get("train_known_runs")
    fresh = [r for r in ids if known is not None and r not in known]
    if fresh:
        st.session_state["train_run"] = fresh[0]
    st.session_state["train_known_runs"] = ids
    labels = {r["run_id"]: f"{r['run_id']} · {training_charts.alpha_text(run_alpha(r['config']))} · "
                           f"{r['status']}" for _, r in runs.iterrows()}
    return st.selectbox("Training run", ids, format_func=labels.get, key="train_run")


def main() -> None:
    st.title("Training")
    st.caption("Stage I: the adapter (and optionally the LLM) learns to carry speech into the LLM, by distillation "
               "from the original LLM reading the same text (α = 1) and/or next-token NLL (α = 0). Curves: the loss "
               "(nats per text position; the CTC per speech token), each learning rate, and at every evaluation step "
               "the dev-slice accuracies (fractions) with F and M (KL divergences of next-token distributions, nats "
               "per token).")
    store_path = data.current_store_path()
    try:
        runs = data.runs(store_path, "train")
    except StoreError as err:
        st.error(str(err))
        return
    if "train_started" in st.session_state:
        st.success(st.session_state.pop("train_started"))
    for job in train_jobs():
        if job["state"] == "running" and not any(job_for_run(r, [job]) for r in runs["run_id"]):
            watch_new_job(store_path, job["job_id"])
    runs = runs.assign(status=[shown_status("train", r, s) for r, s in zip(runs["run_id"], runs["status"])])
    if runs.empty:
        no_runs(store_path)
        start_form(store_path)
        return
    run_id = pick_run(runs)
    job = job_for_run(run_id, train_jobs())
    (live_view if job is not None and job["state"] == "running" else run_view)(store_path, run_id)
    start_form(store_path)
    st.subheader("Training runs")
    widgets.table(run_table(runs), "train_runs", name="training-runs")


main()
