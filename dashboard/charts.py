"""Chart builders: pure functions from store frames to Plotly figures (no Streamlit here, so tests run them directly).

Inputs are `metrics` frames as the store returns them (columns task, metric, value, ci_low, ci_high, n), already
reduced to one row per (task, metric) by `dashboard.views.final_metrics`. Accuracies are fractions; the gap and its
parts are drawn in points (1 point = 0.01 accuracy), as the paper reports them.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from salad_core.store import ALL_TASKS, LANE_ACC_METRIC, LANE_LABELS, LANES

LANE_COLORS = {"base_text": "#4C78A8", "text": "#72B7B2", "speech": "#F58518", "cascade": "#9D755D"}
PART_COLORS = {"forgetting": "#B279A2", "misalignment": "#E45756"}
ALL_LABEL = "all tasks"


def task_label(task: str) -> str:
    return ALL_LABEL if task == ALL_TASKS else task


def task_order(metrics: pd.DataFrame) -> list[str]:
    """Tasks alphabetically, the all-task aggregate last."""
    tasks = sorted(t for t in metrics["task"].unique() if t != ALL_TASKS)
    return tasks + ([ALL_TASKS] if (metrics["task"] == ALL_TASKS).any() else [])


def _series(metrics: pd.DataFrame, metric: str, tasks: list[str], scale: float = 1.0) -> pd.DataFrame:
    """value / ci_low / ci_high of one metric per task in `tasks` order (NaN where missing), times `scale`."""
    rows = metrics[metrics["metric"] == metric].set_index("task")
    frame = rows.reindex(tasks)[["value", "ci_low", "ci_high"]].astype(float)
    return frame * scale


def _error_bars(frame: pd.DataFrame) -> dict | None:
    if frame["ci_low"].isna().all():
        return None
    return {"type": "data", "symmetric": False, "array": (frame["ci_high"] - frame["value"]).tolist(),
            "arrayminus": (frame["value"] - frame["ci_low"]).tolist(), "thickness": 1.2}


def accuracy_bars(metrics: pd.DataFrame, chance: pd.Series | None = None) -> go.Figure:
    """Grouped bars: each lane's accuracy per task with 95 % CI error bars; optional chance level per task."""
    tasks = task_order(metrics)
    labels = [task_label(t) for t in tasks]
    fig = go.Figure()
    for lane in LANES:
        frame = _series(metrics, LANE_ACC_METRIC[lane], tasks)
        if frame["value"].isna().all():
            continue
        fig.add_trace(go.Bar(name=LANE_LABELS[lane], x=labels, y=frame["value"].tolist(), error_y=_error_bars(frame),
                             marker_color=LANE_COLORS[lane],
                             hovertemplate="%{x}: %{y:.3f}<extra>" + LANE_LABELS[lane] + "</extra>"))
    if chance is not None:
        levels = chance.reindex(tasks)
        fig.add_trace(go.Scatter(name="chance (1 / options)", x=labels, y=levels.tolist(), mode="markers",
                                 marker={"symbol": "line-ew", "size": 40, "line": {"width": 2, "color": "#555"}},
                                 hovertemplate="chance %{y:.3f}<extra></extra>"))
    fig.update_layout(barmode="group", title="Accuracy per task and lane",
                      xaxis_title="task", yaxis_title="accuracy (fraction)", yaxis_range=[0, 1],
                      legend_title_text="lane", margin={"t": 50})
    return fig


def gap_split_bars(metrics: pd.DataFrame) -> go.Figure:
    """The gap per task split into forgetting + misalignment (stacked, points), with the total gap as a marker."""
    tasks = task_order(metrics)
    labels = [task_label(t) for t in tasks]
    fig = go.Figure()
    for part in ("forgetting", "misalignment"):
        frame = _series(metrics, part, tasks, scale=100.0)
        fig.add_trace(go.Bar(name=part, x=labels, y=frame["value"].tolist(), marker_color=PART_COLORS[part],
                             hovertemplate="%{x}: %{y:.1f} points<extra>" + part + "</extra>"))
    gap = _series(metrics, "gap", tasks, scale=100.0)
    if not gap["value"].isna().all():
        fig.add_trace(go.Scatter(name="gap (total, 95 % CI)", x=labels, y=gap["value"].tolist(), mode="markers",
                                 error_y=_error_bars(gap), marker={"symbol": "diamond", "size": 11, "color": "#222"},
                                 hovertemplate="%{x}: gap %{y:.1f} points<extra></extra>"))
    fig.add_hline(y=0, line_width=1, line_color="#888")
    fig.update_layout(barmode="relative", title="Gap = forgetting + misalignment",
                      xaxis_title="task", yaxis_title="points (accuracy × 100)", legend_title_text="part",
                      margin={"t": 50})
    return fig


def option_probability_bars(options: pd.DataFrame) -> go.Figure:
    """Demo answers: per lane, each option's probability renormalised over the options; the chosen one outlined.

    `options` has one row per (lane, option): lane, label, option, probability, chosen (see salad_core.demo).
    """
    fig = go.Figure()
    for lane, rows in options.groupby("lane", sort=False):
        fig.add_bar(
            name=rows["label"].iloc[0], x=rows["option"], y=rows["probability"],
            marker={"color": LANE_COLORS.get(lane), "line": {"width": [3 if c else 0 for c in rows["chosen"]],
                                                             "color": "black"}},
            text=[f"{p:.2f}{' ✓' if c else ''}" for p, c in zip(rows["probability"], rows["chosen"])],
            textposition="outside",
        )
    fig.update_layout(barmode="group", yaxis={"title": "probability among the options", "range": [0, 1.1]},
                      xaxis={"title": "answer option"}, legend={"title": "lane"}, margin={"t": 30})
    return fig
