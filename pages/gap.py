"""Gap per task: every lane's accuracy per task, the gap split into forgetting + misalignment, F and M, the gap
per voice condition of a sweep, and the items behind the numbers (filters, audio player, cascade transcript,
per-option scores).

Reads `st.session_state["store_path"]` and `st.session_state["run_id"]`, set by dashboard/app.py's sidebar.
Widget keys start with `gap_`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data, first_launch, views, widgets
from salad_core.assets import AssetError
from salad_core.eval import voices
from salad_core.eval.vocabulary import ALL_TASKS
from salad_core.store import StoreError

HEADLINE = (  # label, metric, unit
    ("text · original LLM", "text_acc_base", "acc"),
    ("speech · adapted", "speech_acc", "acc"),
    ("gap", "gap", "points"),
    ("forgetting", "forgetting", "points"),
    ("misalignment", "misalignment", "points"),
    ("F (KL, text)", "F", "kl"),
    ("M (KL, speech vs text)", "M", "kl"),
    ("item_F", "item_F", "kl"),
    ("item_M", "item_M", "kl"),
)
INTRO = ("How much worse the adapted model answers from speech than the original LLM from the same text, per "
         "task. **Gap** = accuracy of the original LLM on text − accuracy of the adapted model on speech, in points "
         "(1 point = 0.01 accuracy); it splits exactly into **forgetting** (original LLM on text − adapted model "
         "on text) and **misalignment** (adapted model on text − on speech). **F** and **M** measure the same two "
         "causes token by token, as KL divergences of next-token distributions in nats per token, on held-out "
         "documents half read, half heard (the model's world's probe documents, or broad English text); **item_F** "
         "and **item_M** are F and M on the tasks' dev questions heard with their answer read. The grey mark on each "
         "task is the **no-audio floor**: the adapted model hearing silence as long as the question, which is what "
         "the prompt and the options alone give away. Error bars are 95 % bootstrap confidence intervals over items.")
HELP = {
    "gap": "accuracy of the original LLM on text minus the adapted model's on speech",
    "forgetting": "original LLM on text minus adapted model on text",
    "misalignment": "adapted model on text minus adapted model on speech",
    "F": "KL(original || adapted) of next-token distributions on the text of held-out documents",
    "M": "KL(adapted on text || adapted on speech) of next-token distributions on held-out documents",
    "item_F": "F at the answer tokens of the tasks' dev questions",
    "item_M": "M at the answer tokens of the tasks' dev questions (question heard, answer read)",
}
ONE_SPAN = ("M is measured with the first speech span of each held-out document heard and the rest read, on the text "
            "after that span: this speech LLM's family takes one audio per prompt, not audio between text spans.")


def show_headline(metrics: pd.DataFrame) -> None:
    columns = [col for _ in range(0, len(HEADLINE), 4) for col in st.columns(4)]  # rows of 4: values stay whole
    for col, (label, metric, unit) in zip(columns, HEADLINE):
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
    config = run["config"] if run is not None and isinstance(run.get("config"), dict) else {}
    untrained = run is None or not isinstance(run.get("model_path"), str)  # no checkpoint: a fresh adapter
    cause = ("this speech LLM does not turn these spoken questions into answers." if config.get("speech_llm") else
             "the adapter is untrained (Stage I training comes next), so the speech path answers at chance."
             if untrained else "this adapter checkpoint does not yet carry speech into the LLM's input space.")
    st.warning(f"{where}: {cause}")


def show_floor_banner(metrics: pd.DataFrame) -> None:
    unused = views.audio_unused(metrics)
    if unused:
        st.info(f"Speech accuracy is not above the no-audio floor on {', '.join(map(charts.task_label, unused))} "
                "(the 95 % interval of speech minus no audio reaches 0): there the model does not use the audio; its "
                "answers come from the prompt and the options alone.")


def show_parse_failures(metrics: pd.DataFrame, run_id: str) -> None:
    table = views.parse_failures(metrics)
    if table.empty:
        return
    st.info("Answers were generated and matched to an option by letter or by the option's words (generative "
            "scoring). This share of each lane's answers named no option and counts as wrong:")
    widgets.table(table, "gap_parse_fail", name=f"{run_id}-parse-failures")


def show_robustness(run: pd.Series | None, run_id: str, store_path: str) -> None:
    st.subheader("Robustness to the voice")
    config = run["config"] if run is not None and isinstance(run["config"], dict) else {}
    table = voices.gap_table(data.condition_metrics(store_path, run_id), config.get("voices") or ())
    if table.empty:
        st.caption("This run heard every question in one voice. To measure the gap per voice, speed and noise level "
                   "(and on the manifest's real recordings, if it has them), run:")
        st.code(voices.sweep_command(config, store_path), language="bash")
        return
    st.caption("The same items heard in each condition; the text lanes are scored once. Bars: gap (original LLM "
               "on text minus the adapted model on speech) with 95 % paired-bootstrap intervals. The numbers above "
               f"are the reference voice's, {config.get('voice')} (the sweep's first condition).")
    widgets.chart(charts.gap_by_condition_figure(table), "gap_conditions", name=f"{run_id}-gap-per-voice")
    widgets.table(table, "gap_conditions_table", name=f"{run_id}-voices")


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
    widgets.table(views.item_table(rows), "gap_table", name=f"{run_id}-items")
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
    try:
        audio.audio(**data.item_audio(path))
        audio.caption(f"{item['tts_engine']} · voice {item['tts_voice']} · speed {item['tts_speed']:g}")
    except (AssetError, FileNotFoundError) as err:
        audio.caption(f"No audio for this item: {err}")
    if isinstance(item["cascade_transcript"], str):
        wer = "" if pd.isna(item["cascade_wer"]) else f" (WER {item['cascade_wer']:.2f})"
        audio.markdown(f"Cascade transcript{wer}: _{item['cascade_transcript']}_")
    scores = data.option_scores(store_path, run_id, item_id)
    widgets.table(views.option_table(item, scores), "gap_options", name=f"{run_id}-{item_id}-options".replace("/", "_"),
                  where=options)


def show_no_results(run_id: str, run: pd.Series | None, store_path: str) -> None:
    """A run without any result: still writing them, or ended without them (then: evaluate again)."""
    if run is not None and run["status"] == "running":
        st.info(f"Run `{run_id}` is still running and has written no result yet; they appear here as it writes them.")
        return
    status = "is not in this store" if run is None else f"ended ({run['status']}) without writing a result"
    error = "" if run is None or not isinstance(run.get("error"), str) else f" Its error: {run['error'][-300:]}"
    widgets.next_step(f"Run `{run_id}` {status}.{error} Pick another run in the sidebar, or evaluate again:",
                      f"salad eval --db {store_path}")


def main() -> None:
    st.title("Gap per task")
    st.caption(INTRO)
    run_id, store_path = st.session_state.get("run_id"), st.session_state.get("store_path")
    if not run_id:
        widgets.next_step("No evaluation run in this store yet. Evaluate the default model (about four minutes):",
                          f"salad eval --limit {first_launch.DEFAULT_LIMIT} --probe-limit {first_launch.PROBE_LIMIT} "
                          f"--db {store_path or data.default_store_path()}")
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
        show_no_results(run_id, run, store_path)
        return
    chance = views.chance_levels(paired)
    show_chance_banner(metrics, chance, run)
    show_floor_banner(metrics)
    show_parse_failures(metrics, run_id)
    show_headline(metrics)
    model_id = run.get("model_id") if run is not None else None
    if isinstance(model_id, str) and data.model_adapter(store_path, model_id).get("audio_between_text") is False:
        st.caption(ONE_SPAN)
    if not metrics.empty:
        widgets.chart(charts.accuracy_bars(metrics, chance), "gap_accuracy", name=f"{run_id}-accuracy")
        if metrics["metric"].isin(("gap", "forgetting", "misalignment")).any():  # lanes scored without text
            widgets.chart(charts.gap_split_bars(metrics), "gap_split", name=f"{run_id}-gap-split")
    show_robustness(run, run_id, store_path)
    if not paired.empty:
        show_items(paired, run_id, store_path)


main()
