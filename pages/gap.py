"""Gap per task: every lane's accuracy per task, the gap split into forgetting + misalignment, F and M, and the
items behind the numbers (filters, audio player, cascade transcript, per-option scores).

Reads `st.session_state["store_path"]` and `st.session_state["run_id"]`, set by dashboard/app.py's sidebar.
Widget keys start with `gap_`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import charts, data, views
from salad_core.store import ALL_TASKS, StoreError

HEADLINE = (  # label, metric, unit
    ("text · original LLM", "text_acc_base", "acc"),
    ("speech · adapted", "speech_acc", "acc"),
    ("gap", "gap", "points"),
    ("forgetting", "forgetting", "points"),
    ("misalignment", "misalignment", "points"),
    ("F (KL, text)", "F", "kl"),
    ("M (KL, speech vs text)", "M", "kl"),
)
HELP = {
    "gap": "accuracy of the original LLM on text minus the adapted model's on speech",
    "forgetting": "original LLM on text minus adapted model on text",
    "misalignment": "adapted model on text minus adapted model on speech",
    "F": "KL(original || adapted) on text next-token distributions",
    "M": "KL(adapted on text || adapted on speech) next-token distributions",
}


def show_headline(metrics: pd.DataFrame) -> None:
    for col, (label, metric, unit) in zip(st.columns(len(HEADLINE)), HEADLINE):
        row = views.metric_row(metrics, metric)
        if row is None or pd.isna(row["value"]):
            col.metric(label, "—", help=f"{HELP.get(metric, metric)}; not in this run")
            continue
        value = row["value"]
        shown = {"acc": f"{value:.3f}", "points": f"{100 * value:+.1f} pts", "kl": f"{value:.4g}"}[unit]
        col.metric(label, shown, help=HELP.get(metric, metric))


def show_chance_banner(metrics: pd.DataFrame, chance: pd.Series, run: pd.Series | None) -> None:
    at_chance = views.not_above_chance(metrics, chance)
    if not at_chance:
        return
    tasks = set(metrics["task"]) - {ALL_TASKS}
    if ALL_TASKS in at_chance:
        row = views.metric_row(metrics, "speech_acc")
        level = chance[ALL_TASKS]
        where = f"Speech accuracy ({row['value']:.3f}) is no better than chance ({level:.3f} = 1 / options)"
    elif tasks <= set(at_chance):
        where = "Speech accuracy is no better than chance on every task"
    else:
        where = f"Speech accuracy is no better than chance on {', '.join(at_chance)}"
    untrained = run is None or not isinstance(run.get("model_path"), str)  # no checkpoint: a fresh adapter
    cause = ("the adapter is untrained (Stage I training comes next), so the speech path answers at chance."
             if untrained else "this adapter checkpoint does not yet carry speech into the LLM's input space.")
    st.warning(f"{where}: {cause}")


def show_items(paired: pd.DataFrame, run_id: str, store_path: str) -> None:
    st.subheader("Items")
    lanes = views.lanes_present(paired)
    tasks = sorted(paired["task"].unique())
    left, middle, right = st.columns(3)
    task = left.selectbox("Task", ["all tasks", *tasks], key="gap_task")
    lane = middle.selectbox("Lane", lanes, index=lanes.index("speech") if "speech" in lanes else 0, key="gap_lane")
    outcome = right.selectbox("Answer in that lane", views.OUTCOMES, key="gap_outcome")
    rows = views.filter_items(paired, None if task == "all tasks" else task, lane, outcome)
    st.caption(f"{len(rows)} of {len(paired)} items")
    st.dataframe(views.item_table(rows), hide_index=True, key="gap_table")
    if rows.empty:
        return
    questions = dict(zip(rows["item_id"], rows["question"]))
    item_id = st.selectbox("Listen to an item", list(questions), key="gap_item",
                           format_func=lambda i: f"{i} · {questions[i][:80]}")
    show_item(rows.set_index("item_id").loc[item_id], run_id, item_id, store_path)


def show_item(item: pd.Series, run_id: str, item_id: str, store_path: str) -> None:
    audio, options = st.columns([2, 3])
    audio.markdown(f"**{item['question']}**")
    path = item["audio_path"]
    if isinstance(path, str) and Path(path).is_file():
        audio.audio(path)
        audio.caption(f"{item['tts_engine']} · voice {item['tts_voice']} · speed {item['tts_speed']:g}")
    else:
        audio.caption(f"No audio file for this item ({path or 'no path stored'}).")
    if isinstance(item["cascade_transcript"], str):
        wer = "" if pd.isna(item["cascade_wer"]) else f" (WER {item['cascade_wer']:.2f})"
        audio.markdown(f"Cascade transcript{wer}: _{item['cascade_transcript']}_")
    scores = data.option_scores(store_path, run_id, item_id)
    options.dataframe(views.option_table(item, scores), hide_index=True)


def main() -> None:
    st.title("Gap per task")
    run_id, store_path = st.session_state.get("run_id"), st.session_state.get("store_path")
    if not run_id:
        st.caption("Results appear here once an evaluation run is in the store.")
        return
    try:
        metrics = views.final_metrics(data.metrics(store_path, run_id))
        paired = data.paired_items(store_path, run_id)
        runs = data.runs(store_path, "eval")
    except StoreError as err:
        st.error(str(err))
        return
    run = runs.set_index("run_id").loc[run_id] if run_id in set(runs["run_id"]) else None
    st.caption(f"Run `{run_id}`" + ("" if run is None else f" · {views.model_label(run)} · {run['status']} · "
                                                            f"code {run['code_version']}"))
    if metrics.empty and paired.empty:
        st.info(f"Run {run_id} has no results yet" + ("" if run is None else f" (status: {run['status']}).")
                + " They appear as the evaluation writes them.")
        return
    chance = views.chance_levels(paired)
    show_chance_banner(metrics, chance, run)
    show_headline(metrics)
    if not metrics.empty:
        st.plotly_chart(charts.accuracy_bars(metrics, chance), key="gap_accuracy")
        st.plotly_chart(charts.gap_split_bars(metrics), key="gap_split")
    if not paired.empty:
        show_items(paired, run_id, store_path)


main()
