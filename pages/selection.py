"""Active selection (SALAD Stage II): where a Stage I model is still misaligned, cluster by cluster; a round of
targeted synthetic speech started as a background job; the history of rounds and what each gained per task.

The work is `salad select --train …` (selection, synthesis, Stage II training and its final evaluation) run by
`salad_core.jobs`; this page reads the store. Widget keys start with `sel_`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, job_panel, selection_charts, training_charts, views, widgets
from salad_core import compare, jobs
from salad_core.select import report
from salad_core.select.config import SelectConfig
from salad_core.store import Store, StoreError

JOB_NAME = "select"
START_LABEL = "Start a round: select, synthesize, train Stage II"


@st.cache_data(ttl=5, show_spinner=False)
def selection(path: str, round_id: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The round's clusters, its texts (map sample, probes, selection) and its domains per cluster."""
    store = Store(path)
    return store.selection_clusters(round_id), store.selection_texts(round_id), store.selection_domains(round_id)


@st.cache_data(ttl=5, show_spinner=False)
def final_metrics(path: str, run_id: str) -> pd.DataFrame:
    return compare.final_evaluation(Store(path), run_id)


@st.cache_data(ttl=60, show_spinner=False)
def speech_correct(path: str, run_id: str) -> pd.DataFrame:
    return report.final_speech_correct(Store(path), run_id)


def stage1_runs(train_runs: pd.DataFrame) -> pd.DataFrame:
    stage = [c.get("stage", 1) if isinstance(c, dict) else 1 for c in train_runs["config"]]
    return train_runs[(pd.Series(stage, index=train_runs.index) == 1) & (train_runs["status"] == "done")]


def covered_domains(path: str, run_id: str) -> set[str]:
    """Domains of the run's world that its natural speech covers (empty when the world cannot be read)."""
    from salad_core.presets import get_preset
    from salad_core.world import load_world

    runs = data.runs(path, "train").set_index("run_id")
    try:
        world = load_world(get_preset(runs.loc[run_id, "config"]["preset"]).world)
    except Exception:  # noqa: BLE001 - the page works without the world, it only loses the labels
        return set()
    return world.covered_domains


def scoring_models(stage1: str, rounds: pd.DataFrame) -> dict[str, str]:
    """The models a new round can be scored with: the Stage I run, and every Stage II run of its lineage (the next
    round: re-scored by that model, its Stage II continuing the Stage I run on every round behind it)."""
    models = {stage1: f"Stage I ({stage1}): round 1"}
    for _, r in rounds[rounds["status"] == "done"].sort_values("created_at").iterrows():
        for run_id in filter(None, r["stage2_runs"].split(", ")):
            models[run_id] = f"Stage II on round {r['round']} · {r['label']} ({run_id}): round {r['round'] + 1}"
    return models


def round_form(path: str, stage1: str, rounds: pd.DataFrame) -> None:
    """The model that scores the round; γ, budget and strategy; the allocation they give on that model's latest
    scores; a button to run it."""
    models = scoring_models(stage1, rounds)
    run_id = st.selectbox("Score the clusters with", list(models), format_func=models.get, key="sel_model")
    scored_by = rounds[(rounds["from_run"] == run_id) & (rounds["status"] == "done")]
    last_round = scored_by["round_id"].iloc[0] if not scored_by.empty else None
    defaults = SelectConfig(from_run=run_id)
    left, middle, right = st.columns(3)
    gamma = left.slider("γ: how hard to chase misalignment (0 = uniform over the corpus)", 0.0, 10.0,
                        float(defaults.gamma), 0.5, key="sel_gamma")
    strategy = left.selectbox("Strategy", ("active", "random"), key="sel_strategy",
                              help="random ignores the clusters: texts uniformly from the whole corpus")
    budget = middle.text_input("Budget: hours ('0.2'), seconds ('720s') or share of the natural speech ('10%')",
                               defaults.budget, key="sel_budget")
    score = middle.selectbox("Misalignment score", ("m", "distill"), key="sel_score",
                             help="m: KL(text ‖ speech) of the model; distill: KL(original LLM ‖ speech)")
    cer_max = right.number_input("Drop clusters whose probe speech the ASR reads back with CER above", 0.0, 5.0,
                                 float(defaults.cer_max), 0.05, key="sel_cer")
    clusters_k = right.number_input("Clusters K (0 = automatic)", 0, 1024, 0, key="sel_k")
    with st.expander("Pool and engine (default: the world's pool, Ray on this machine)"):
        pool = st.text_input("Pool: hf:ORG/NAME[:CONFIG][@SPLIT], a parquet or JSONL glob, or a folder of .txt files "
                             "(empty: the world's pool)", "", key="sel_pool")
        embedder = st.text_input("Embedder: a sentence-transformers model, or static:NAME (model2vec, far cheaper on "
                                 "a CPU)", defaults.embedder, key="sel_embedder")
        ray_address = st.text_input("Ray cluster address (empty: Ray on this machine's cores)", "", key="sel_ray")
    if last_round:
        scored = selection(path, last_round)[0]
        try:
            preview = report.preview_allocation(scored, gamma if strategy == "active" else 0.0, score, cer_max)
            st.caption(f"Allocation before anything runs, on the cluster scores of round `{last_round}` "
                       "(same model; a new round re-scores with fresh probes of its own clusters).")
            widgets.chart(selection_charts.misalignment_bars(preview, score), "sel_preview",
                          name=f"{run_id}-allocation-preview")
        except ValueError as err:
            st.warning(str(err))
    else:
        st.caption("No round has scored this model yet: the first round's scores will drive the preview here.")
    if st.button(START_LABEL, type="primary", key="sel_start"):
        try:
            config = SelectConfig(from_run=run_id, gamma=gamma, strategy=strategy, budget=budget, score=score,
                                  cer_max=cer_max, clusters=int(clusters_k), pool=pool.strip(),
                                  embedder=embedder.strip(), ray_address=ray_address.strip())
            args = ["select", "--train", *config.to_argv(), "--db", path]
            job_id = jobs.start_job(args, JOB_NAME)
            st.success(f"Started `salad {' '.join(args)}` as job `{job_id}`.")
        except (jobs.JobError, ValueError) as err:
            st.error(str(err))


@st.fragment(run_every=2)
def running_jobs() -> None:
    for job in [j for j in jobs.list_jobs(JOB_NAME) if j["state"] == "running"]:
        job_panel.show_job(job, "sel")


def round_view(path: str, round_id: str, covered: set[str]) -> None:
    clusters, texts, domains = selection(path, round_id)
    if clusters.empty:
        st.info(f"Round `{round_id}` has no cluster scores yet: it is still running (its progress shows above), or "
                f"it failed (see its status in the Rounds table above). To try again, press “{START_LABEL}” above.")
        return
    members, selected = texts[texts["role"] == "member"], texts[texts["role"] == "selected"]
    allocation = report.domain_allocation(clusters, domains, selected)
    cells = st.columns(4)
    cells[0].metric("clusters", len(clusters))
    cells[1].metric("filtered", int(clusters["filtered"].sum()))
    cells[2].metric("selected audio", views.format_seconds(float(selected["seconds"].sum())))
    if covered:
        cells[3].metric("to domains without natural speech", f"{report.uncovered_share(allocation, covered):.0%}")
    left, right = st.columns(2)
    widgets.chart(selection_charts.cluster_map(members, clusters, selected), "sel_map", name=f"{round_id}-map",
                  where=left)
    widgets.chart(selection_charts.misalignment_bars(clusters), "sel_bars", name=f"{round_id}-misalignment",
                  where=right)
    widgets.chart(selection_charts.allocation_bars(allocation, covered=covered), "sel_alloc",
                  name=f"{round_id}-allocation")
    with st.expander("Clusters (table)"):
        widgets.table(clusters.drop(columns=["run_id"]), "sel_clusters", name=f"{round_id}-clusters")
    with st.expander("Selected texts"):
        widgets.table(selected[["text_key", "cluster", "domain", "seconds", "text"]], "sel_texts",
                      name=f"{round_id}-selected-texts")


def comparison(path: str, stage1: str, rounds: pd.DataFrame, train_plans: pd.Series, covered: set[str]) -> None:
    """Stage I vs each Stage II run made from it, per task (final evaluations, 95 % CI)."""
    finals = {f"Stage I ({stage1})": final_metrics(path, stage1)}
    for _, r in rounds.iterrows():
        for run_id in filter(None, (r["stage2_runs"] or "").split(", ")):
            finals[f"Stage II · round {r['round']} · {r['label']} ({run_id})"] = final_metrics(path, run_id)
    finals = {k: v for k, v in finals.items() if not v.empty}
    if len(finals) < 2:
        widgets.next_step("No Stage II run from this model has a final evaluation yet, so there is nothing to compare. "
                          f"Press “{START_LABEL}” above: the round selects and synthesizes speech, trains Stage II "
                          "and evaluates it. Or from a shell:", f"salad select --train --from {stage1} --db {path}")
        return
    table = report.task_comparison(finals)
    widgets.chart(selection_charts.task_comparison_bars(table, "Speech accuracy per task: Stage I vs Stage II"),
                  "sel_compare", name=f"{stage1}-stage1-vs-stage2")
    gains = report.gains(table, next(iter(finals)))
    st.caption("Gain over Stage I (difference in speech accuracy, as a fraction; positive = Stage II better)")
    widgets.table(gains, "sel_gains", name=f"{stage1}-gains")
    active_vs_uniform(path, stage1, rounds, train_plans, covered)


def active_vs_uniform(path: str, stage1: str, rounds: pd.DataFrame, train_plans: pd.Series,
                      covered: set[str]) -> None:
    """Active − uniform on the same test items, per pair of Stage II runs that differ only in the strategy."""
    pairs = report.equal_budget_pairs(rounds, train_plans)
    if not pairs:
        st.caption("Active vs uniform at equal budget: run a round at γ = 0 with the budget and seed of an active "
                   "round (and train Stage II on both with the same synthetic share) to compare them item by item.")
        return
    by_length = report.pairs_by_length(pairs)
    if len(by_length) > 1:
        steps = st.selectbox("Stage II length (steps)", list(by_length), index=len(by_length) - 1, key="sel_steps")
        pairs = by_length[steps]
    try:
        correct = {r: speech_correct(path, r) for p in pairs for r in (p["active"], p["uniform"])}
    except ValueError as err:
        st.caption(str(err))
        return
    domains = set().union(*(set(f["domain"]) for f in correct.values()))
    groups = {"uncovered": domains - covered, "covered": covered} if covered else {"all domains": domains}
    table = report.equal_budget_table(pairs, correct, groups)
    widgets.chart(selection_charts.difference_forest(table, list(groups)), "sel_forest",
                  name=f"{stage1}-active-vs-uniform")
    st.caption("Each pair: the active and the uniform round at the same budget, selection seed and synthetic share; "
               "the same test items scored by both Stage II models (paired bootstrap). Pooled: the per-item mean "
               "over the pairs, resampled by item.")
    widgets.table(table, "sel_pairs", name=f"{stage1}-active-vs-uniform")


def main() -> None:
    st.title("Active selection")
    st.caption("Stage II of SALAD: the broad text corpus is embedded and cut into balanced clusters; a few texts per "
               "cluster are spoken and the Stage I model's misalignment M(c) = KL(text input ‖ speech input) is "
               "measured there. The synthesis budget is then spent with P_target(c) ∝ P_web(c) · M(c)^γ, where "
               "P_web(c) is the cluster's share of the corpus; clusters whose synthetic speech the ASR cannot read "
               "back are dropped. M(c) is in nats per token; accuracies are fractions, with 95 % confidence "
               "intervals.")
    path = data.current_store_path()
    try:
        train_runs, select_runs = data.runs(path, "train"), data.runs(path, "select")
    except StoreError as err:
        st.error(str(err))
        return
    stage1 = stage1_runs(train_runs)
    if stage1.empty:
        st.info("No finished Stage I run yet: Stage II starts from one. Train one on the Training page (or "
                "`salad train --preset mini`), then come back here.")
        return
    labels = {r["run_id"]: f"{r['run_id']} · {training_charts.alpha_text(r['config'].get('alpha'))}"
              for _, r in stage1.iterrows()}
    run_id = st.selectbox("Stage I model", list(labels), format_func=labels.get, key="sel_run")
    rounds = report.rounds_table(select_runs, train_runs)
    mine = rounds[rounds["stage1_run"] == run_id]
    done = mine[mine["status"] == "done"]
    st.subheader("New round")
    round_form(path, run_id, mine)
    running_jobs()
    if mine.empty:
        st.info(f"No selection round from this model yet: choose γ and a budget above and press “{START_LABEL}”.")
        return
    st.subheader("Rounds")
    widgets.table(mine, "sel_rounds", name=f"{run_id}-rounds")
    names = {r: f"round {n} · {label} ({r})" for r, n, label in zip(mine["round_id"], mine["round"], mine["label"])}
    shown = st.selectbox("Round", list(names), format_func=names.get, key="sel_round")
    covered = covered_domains(path, run_id)  # reads the world once for both sections
    round_view(path, shown, covered)
    st.subheader("Stage I vs Stage II, active vs uniform")
    comparison(path, run_id, done, train_runs.set_index("run_id")["plan"], covered)


main()
