"""Pure frame helpers behind the pages: final metric values, chance levels, item filters, job progress text.

No Streamlit and no metric definitions here: metric values come from the store as the evaluation wrote them; these
functions only select, align and format them.
"""

from __future__ import annotations

import math

import pandas as pd

from salad_core.eval.metrics import parse_fail_metric
from salad_core.eval.vocabulary import ALL_TASKS, LANES

OUTCOMES = ("all", "correct", "wrong", "text right, speech wrong")


def final_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, metric): the end-of-run value (step NULL), else the value at the latest step."""
    if metrics.empty:
        return metrics
    ordered = metrics.assign(_final=metrics["step"].isna(), _step=metrics["step"].fillna(-1).astype(int))
    ordered = ordered.sort_values(["_final", "_step"], kind="stable")
    last = ordered.groupby(["task", "metric"]).tail(1)  # whole rows: .last() would mix non-null cells across rows
    return last.drop(columns=["_final", "_step"]).sort_values(["task", "metric"]).reset_index(drop=True)


def metric_row(metrics: pd.DataFrame, metric: str, task: str = ALL_TASKS) -> pd.Series | None:
    rows = metrics[(metrics["metric"] == metric) & (metrics["task"] == task)]
    return None if rows.empty else rows.iloc[-1]


def chance_levels(paired: pd.DataFrame) -> pd.Series:
    """Accuracy of answering at random, per task and over all items: the mean of 1 / number of options."""
    if paired.empty:
        return pd.Series(dtype=float)
    per_item = pd.Series([1.0 / len(c) for c in paired["choices"]], index=paired.index)
    levels = per_item.groupby(paired["task"]).mean()
    levels[ALL_TASKS] = per_item.mean()
    return levels


def not_above_chance(metrics: pd.DataFrame, chance: pd.Series, metric: str = "speech_acc") -> list[str]:
    """Tasks whose `metric` is not significantly above chance (within its 95 % interval of chance, or below it).

    With a stored CI: its lower end reaches chance. Without one but with n: less than 1.96 binomial standard errors
    above chance. Tasks with neither are left out (no evidence either way).
    """
    found = []
    for _, row in metrics[metrics["metric"] == metric].iterrows():
        level = chance.get(row["task"])
        if level is None or pd.isna(row["value"]):
            continue
        if pd.notna(row["ci_low"]):
            flat = row["ci_low"] <= level
        elif pd.notna(row["n"]) and row["n"] > 0:
            flat = row["value"] - level <= 1.96 * math.sqrt(level * (1 - level) / row["n"])
        else:
            continue
        if flat:
            found.append(row["task"])
    return found


def audio_unused(metrics: pd.DataFrame) -> list[str]:
    """Tasks where hearing the question adds nothing measurable over hearing silence: the 95 % interval of
    speech − no audio (`audio_gain`, paired over items) reaches 0."""
    gains = metrics[metrics["metric"] == "audio_gain"]
    return not_above_chance(gains, pd.Series(0.0, index=gains["task"].unique()), "audio_gain")


def parse_failures(metrics: pd.DataFrame) -> pd.DataFrame:
    """Generative scoring's share of answers matched to no option (counted wrong): a row per task (the pooled row
    named "all tasks"), a column per lane in the lanes' order; empty for a run scored by log-likelihood."""
    names = {parse_fail_metric(lane): lane for lane in LANES}
    rows = metrics[metrics["metric"].isin(list(names))]
    if rows.empty:
        return pd.DataFrame()
    table = rows.assign(lane=rows["metric"].map(names)).pivot_table(index="task", columns="lane", values="value")
    table = table[[lane for lane in LANES if lane in table.columns]].rename(index={ALL_TASKS: "all tasks"})
    return table.rename_axis(index="task", columns=None).reset_index()


def lanes_present(paired: pd.DataFrame) -> list[str]:
    return [lane for lane in LANES if f"{lane}_correct" in paired and paired[f"{lane}_correct"].notna().any()]


def filter_items(paired: pd.DataFrame, task: str | None = None, lane: str = "speech",
                 outcome: str = "all") -> pd.DataFrame:
    """Items of one task (None: all) whose answer in `lane` has `outcome` (one of OUTCOMES)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"Unknown outcome filter {outcome!r}; use one of {', '.join(OUTCOMES)}.")
    rows = paired if task is None else paired[paired["task"] == task]
    if outcome == "all":
        return rows

    def answered(col: str, correct: bool) -> pd.Series:  # a lane without an answer matches neither
        return rows[f"{col}_correct"].eq(correct).fillna(False).astype(bool)

    if outcome == "text right, speech wrong":
        return rows[answered("text", True) & answered("speech", False)]
    return rows[answered(lane, outcome == "correct")]


def option_table(item: pd.Series, scores: pd.DataFrame) -> pd.DataFrame:
    """One item's options: the right answer, each lane's pick and, where stored, its log-probability per option."""
    options = range(len(item["choices"]))
    table = pd.DataFrame({"option": item["choices"], "answer": ["✓" if i == item["answer"] else "" for i in options]})
    for lane in LANES:
        pred = item.get(f"{lane}_pred")
        if pred is not None and pd.notna(pred):
            table[f"{lane} pick"] = ["●" if i == pred else "" for i in options]
        lane_scores = scores[scores["lane"] == lane].set_index("choice_idx")["logprob"]
        if not lane_scores.empty:
            table[f"{lane} log-prob"] = lane_scores.reindex(options).tolist()
    return table


def _mark(value: object) -> str:
    return "–" if pd.isna(value) else ("✓" if value else "✗")


def item_table(paired: pd.DataFrame) -> pd.DataFrame:
    """The item list as shown: question, right answer, a ✓/✗ per lane, cascade transcript and WER."""
    table = pd.DataFrame({
        "item": paired["item_id"],
        "task": paired["task"],
        "question": paired["question"],
        "answer": [c[a] if 0 <= a < len(c) else None for c, a in zip(paired["choices"], paired["answer"])],
    })
    for lane in lanes_present(paired):
        table[lane] = [_mark(v) for v in paired[f"{lane}_correct"]]
    table["cascade transcript"] = paired["cascade_transcript"]
    table["cascade WER"] = paired["cascade_wer"]
    return table.reset_index(drop=True)


def model_label(run: pd.Series) -> str:
    """The run's model name, else its id (missing values may read as None or NaN)."""
    names = [run.get("model_name"), run.get("model_id")]
    return next((n for n in names if isinstance(n, str) and n), "unknown model")


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else (f"{minutes} min {secs:02d} s" if minutes else f"{secs} s")


def progress_label(progress: dict | None) -> str:
    """'scoring: 12 / 50 (24 %) · ETA 1 min 05 s · capitals' from a progress.json state."""
    if not progress:
        return "starting…"
    total = progress.get("total")
    count = f"{progress['done']} / {total}" if total else f"{progress['done']} done"
    share = f" ({100 * progress['fraction']:.0f} %)" if progress.get("fraction") is not None else ""
    eta = f" · ETA {format_seconds(progress.get('eta_s'))}" if total else ""
    message = f" · {progress['message']}" if progress.get("message") else ""
    return f"{progress.get('stage') or 'working'}: {count}{share}{eta}{message}"


def world_tables(info: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A built world's summary (`World.info()`): one row per domain (coverage, facts by purpose, items, documents),
    and the leak audit: per task, eval facts stated in each training source (0 everywhere: nothing leaks)."""
    domains = pd.DataFrame([{
        "task": d["task"], "kind": d["kind"], "natural speech": "yes" if d["in_natural_speech"] else "no",
        "eval facts": d.get("n_eval_facts"), "train facts": d.get("n_train_facts"), "test items": d["n_test"],
        "dev items": d["n_dev"], "speech documents": d["n_speech_docs"], "selection pool documents": d.get("n_pool_docs"),
    } for d in info.get("domains", [])])
    return domains, audit_pivot(info.get("audit") or [])


def audit_pivot(rows: list[dict]) -> pd.DataFrame:
    """A leak audit's rows (world/audit.py: task, source, leaked, ...) as a table: a row per task, a column per
    source, each cell the task's eval facts that source states."""
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).pivot_table(index="task", columns="source", values="leaked", aggfunc="first",
                                          sort=False).reset_index()
