"""Forgetting & dynamics: how F, M and accuracy move during training, per run and per distillation weight α.

Every training run's periodic evaluations (metrics with a step) become checkpoints (`salad_core.analysis`), pooled
over every training run or one tag's (a `salad sweep` grid). Shown: F, M, text and speech accuracy against training
tokens or hours of natural speech (one curve per run, coloured by α, with the power law M(D) = E + B·D^(−β) fitted
per α); speech accuracy vs log M and text accuracy vs F across all checkpoints with R², leave-one-out R² and
partial R², with the store's evaluated speech LLMs placed beside the checkpoints; a final per-task comparison of
chosen runs; and the data-efficiency curve (speech accuracy against hours of natural speech) with the hours one α
needs to match another's best. Widget keys start with `dyn_`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, training_charts, views, widgets
from salad_core import analysis, fitting
from salad_core.eval.vocabulary import ALL_TASKS
from salad_core.store import StoreError

X_CHOICES = {"training tokens": "tokens", "hours of natural speech": "speech_hours"}
CURVES = (("M", True), ("F", True), ("speech_acc", False), ("text_acc", False))  # metric, power-law overlay


def load(store_path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training runs and all their metrics rows."""
    runs = data.runs(store_path, "train")
    return runs, all_metrics(store_path, runs)


def all_metrics(store_path: str, runs: pd.DataFrame) -> pd.DataFrame:
    frames = [data.metrics(store_path, run_id) for run_id in runs["run_id"]]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run_id", "task", "metric",
                                                                                     "value", "step"])


def speech_llms(store_path: str) -> pd.DataFrame:
    """The speech LLMs evaluated in the store, as points for the scatters."""
    runs = data.runs(store_path, "eval")
    runs = runs[runs["config"].map(lambda c: isinstance(c, dict) and bool(c.get("speech_llm"))).astype(bool)]
    return analysis.speech_llm_points(runs, all_metrics(store_path, runs))


def pick_runs(runs: pd.DataFrame, metrics: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs to pool: all of them, or one tag's (a sweep's grid)."""
    groups = analysis.run_groups(runs)
    group = st.selectbox("Runs", list(groups), key="dyn_group",
                         format_func=lambda g: f"{g} ({len(groups[g])} run{'s' if len(groups[g]) != 1 else ''})")
    chosen = set(groups[group])
    return runs[runs["run_id"].isin(chosen)], metrics[metrics["run_id"].isin(chosen)]


def pick_task(metrics: pd.DataFrame) -> str:
    tasks = sorted(set(metrics["task"]) - {ALL_TASKS})
    return st.selectbox("Task", [ALL_TASKS, *tasks], key="dyn_task",
                        format_func=lambda t: "all tasks" if t == ALL_TASKS else t)


def show_curves(points: pd.DataFrame) -> None:
    st.subheader("Dynamics")
    x = X_CHOICES[st.radio("Against", list(X_CHOICES), horizontal=True, key="dyn_x")]
    if points[x].isna().all():
        st.caption(f"No checkpoint records `{x}` (the trainer writes it as a metric per evaluation step), so these "
                   "curves stay empty; try the other axis.")
    columns = st.columns(2)
    for i, (metric, overlay) in enumerate(CURVES):
        fits = fitting.fit_power_laws(points, x, metric) if overlay and points[x].notna().any() else None
        widgets.chart(training_charts.dynamics_curves(points, metric, x, fits), f"dyn_{metric}",
                      name=f"dynamics-{metric}-vs-{x}", where=columns[i % 2])
    if points[x].notna().any():
        st.markdown(f"**Power-law fits M(D) = E + B·D^(−β) per α** (D in {x.replace('_', ' ')})")
        widgets.table(fitting.power_law_table(fitting.fit_power_laws(points, x, "M")), "dyn_fits",
                      name=f"power-law-fits-M-vs-{x}")


def show_scatters(points: pd.DataFrame, models: pd.DataFrame) -> None:
    st.subheader("What the gap follows")
    fits = analysis.scatter_fits(points)
    left, right = st.columns(2)
    for column, key, x, y, log_x in ((left, "speech_vs_log_M", "M", "speech_acc", True),
                                     (right, "text_vs_F", "F", "text_acc", False)):
        fit = fits[key]
        figure = training_charts.fit_scatter(points, x, y, fit if isinstance(fit, fitting.LinearFit) else None,
                                             log_x, models)
        widgets.chart(figure, f"dyn_{key}", name=key.replace("_", "-"), where=column)
        if isinstance(fit, str):
            column.caption(f"No fit: {fit}")
    if not models.empty:
        st.caption("Diamonds: speech LLMs evaluated in this store (`salad eval --speech-llm`), their corpus F and M "
                   "measured on the broad held-out documents; they are shown beside the checkpoints, not fitted.")
    st.caption("The same fits on both measures of the divergences: **corpus** (held-out documents, every text position) "
               "and **items** (the answer tokens of dev questions heard, which is close to asking whether the answer "
               "wins). The corpus fit is the finding; the item fit is shown beside it.")
    widgets.table(analysis.scatter_table(fits), "dyn_scatter_table", name="scatter-fits")
    partial = analysis.partial_r2_table(points)
    st.caption("Partial R²: the share of what the other cause leaves unexplained that this cause explains.")
    widgets.table(partial, "dyn_partial", name="partial-r2")


def show_comparison(store_path: str, runs: pd.DataFrame) -> None:
    st.subheader("Run comparison")
    labels = {r["run_id"]: f"{r['run_id']} · {training_charts.alpha_text(analysis.run_alpha(r['config']))}"
              for _, r in runs.iterrows()}
    chosen = st.multiselect("Runs", list(labels), default=list(labels)[:2], format_func=labels.get, key="dyn_runs")
    if len(chosen) < 2:
        st.caption("Pick two or more runs to compare their final per-task results.")
        return
    finals = {labels[r]: views.final_metrics(data.metrics(store_path, r)) for r in chosen}
    table = analysis.compare_runs(finals)
    if table.empty:
        st.caption("These runs have no final evaluation yet: a run evaluates when it finishes. Resume an unfinished "
                   "one on the Training page (button “Resume from its last checkpoint”).")
        return
    widgets.table(table, "dyn_compare", name="run-comparison")


def show_efficiency(points: pd.DataFrame) -> None:
    st.subheader("Data efficiency")
    usable = points.dropna(subset=["speech_hours", "speech_acc"])
    alphas = sorted(usable["alpha"].dropna().unique())
    efficiency = None
    if len(alphas) >= 2:
        left, right = st.columns(2)
        alpha = left.selectbox("α", alphas, index=len(alphas) - 1, key="dyn_eff_alpha", format_func="{:g}".format)
        reference = right.selectbox("compared with α", alphas, index=0, key="dyn_eff_ref", format_func="{:g}".format)
        try:
            efficiency = analysis.data_efficiency(points, alpha, reference)
            st.markdown(efficiency.sentence())
        except analysis.AnalysisError as err:
            st.caption(str(err))
    else:
        st.caption("Train at least two values of α to compare how much natural speech each needs, e.g. "
                   "`salad sweep --preset mini --alphas 0,1`.")
    widgets.chart(training_charts.efficiency_curves(points, efficiency), "dyn_efficiency", name="data-efficiency")


def main() -> None:
    st.title("Forgetting & dynamics")
    st.caption("How forgetting and misalignment move while a model trains, and what accuracy follows them. **F** = "
               "KL(original LLM ‖ adapted model) on text: how far the adapted model's text predictions moved "
               "(forgetting). **M** = KL(adapted model on text ‖ on speech): how far its predictions from speech are "
               "from those from the same text (misalignment). Both in nats per token; accuracies are fractions; R² "
               "is the share of variance a line explains, LOO R² the same when each point is predicted without it.")
    store_path = data.current_store_path()
    try:
        runs, metrics = load(store_path)
    except StoreError as err:
        st.error(str(err))
        return
    if runs.empty:
        st.info("No training run in this store yet. Start one on the Training page, or run "
                "`salad sweep --preset mini --alphas 0,0.25,0.5,0.75,1` for the α grid these charts compare.")
        return
    runs, metrics = pick_runs(runs, metrics)
    points = analysis.checkpoints(runs, metrics, task=pick_task(metrics))
    if points.empty:
        st.info("The training runs have no periodic evaluation yet: the curves appear after a run's first "
                "evaluation step (every `eval_every` optimizer steps; e.g. `salad train --preset mini --eval-every 50`"
                "). Follow a run's progress on the Training page.")
    else:
        show_curves(points)
        show_scatters(points, speech_llms(store_path))
        show_efficiency(points)
    show_comparison(store_path, runs)


main()
