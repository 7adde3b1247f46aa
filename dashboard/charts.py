"""Chart builders: pure functions from store frames to Plotly figures (no Streamlit here, so tests run them directly).

Inputs are `metrics` frames as the store returns them (columns task, metric, value, ci_low, ci_high, n), already
reduced to one row per (task, metric) by `dashboard.views.final_metrics`. Accuracies are fractions; the gap and its
parts are drawn in points (1 point = 0.01 accuracy), as the paper reports them.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from salad_core.eval.vocabulary import ALL_TASKS, LANE_ACC_METRIC, LANE_LABELS, LANES

LANE_COLORS = {"base_text": "#4C78A8", "text": "#72B7B2", "speech": "#F58518", "cascade": "#9D755D",
               "noaudio": "#BAB0AC"}
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
    """Grouped bars: each lane's accuracy per task with 95 % CI error bars; the no-audio floor (the model hearing
    silence) as a mark per task where the run has it; optional chance level per task."""
    tasks = task_order(metrics)
    labels = [task_label(t) for t in tasks]
    fig = go.Figure()
    for lane in (lane for lane in LANES if lane != "noaudio"):
        frame = _series(metrics, LANE_ACC_METRIC[lane], tasks)
        if frame["value"].isna().all():
            continue
        fig.add_trace(go.Bar(name=LANE_LABELS[lane], x=labels, y=frame["value"].tolist(), error_y=_error_bars(frame),
                             marker_color=LANE_COLORS[lane],
                             hovertemplate="%{x}: %{y:.3f}<extra>" + LANE_LABELS[lane] + "</extra>"))
    floor = _series(metrics, LANE_ACC_METRIC["noaudio"], tasks)
    if not floor["value"].isna().all():
        fig.add_trace(go.Scatter(name=f"floor: {LANE_LABELS['noaudio']} (95 % CI)", x=labels,
                                 y=floor["value"].tolist(), error_y=_error_bars(floor), mode="markers",
                                 marker={"symbol": "line-ew", "size": 40,
                                         "line": {"width": 3, "color": LANE_COLORS["noaudio"]}},
                                 hovertemplate="no-audio floor %{y:.3f}<extra></extra>"))
    if chance is not None:
        levels = chance.reindex(tasks)
        fig.add_trace(go.Scatter(name="chance (1 / options)", x=labels, y=levels.tolist(), mode="markers",
                                 marker={"symbol": "line-ew", "size": 40, "line": {"width": 2, "color": "#555"}},
                                 hovertemplate="chance %{y:.3f}<extra></extra>"))
    fig.update_layout(barmode="group", title="Accuracy per task and lane",
                      xaxis_title="task", yaxis_title="accuracy (fraction)", yaxis_range=[0, 1],
                      legend_title_text="lane", showlegend=True, margin={"t": 50})
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
                      showlegend=True, margin={"t": 50})
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
    fig.update_layout(barmode="group", title="Each lane's probability of each answer option (✓ = its pick)",
                      yaxis={"title": "probability among the options (fraction)", "range": [0, 1.1]},
                      xaxis={"title": "answer option", "type": "category"},  # "70", "72": options, not numbers
                      legend={"title": "lane"}, showlegend=True, margin={"t": 50})
    return fig


def gap_by_condition_figure(table: pd.DataFrame) -> go.Figure:
    """The gap per voice condition of a sweep (`salad_core.eval.voices.gap_table`): one bar per task at each
    condition, in points with 95 % CI error bars, conditions in the table's order."""
    conditions = list(dict.fromkeys(table["condition"]))
    fig = go.Figure()
    for task in dict.fromkeys(table["task"]):
        rows = table[table["task"] == task].set_index("condition").reindex(conditions)
        frame = rows[["gap", "gap_ci_low", "gap_ci_high"]].set_axis(["value", "ci_low", "ci_high"], axis=1) * 100.0
        fig.add_trace(go.Bar(name=task_label(task), x=conditions, y=frame["value"].tolist(),
                             error_y=_error_bars(frame), customdata=rows["n"].tolist(),
                             hovertemplate="%{x}: gap %{y:.1f} points (n = %{customdata})<extra>" + task_label(task)
                             + "</extra>"))
    fig.add_hline(y=0, line_width=1, line_color="#888")
    fig.update_layout(barmode="group", title="Gap per voice condition (95 % CI)", xaxis_title="voice condition",
                      yaxis_title="gap, points (accuracy × 100)", legend_title_text="task", showlegend=True,
                      margin={"t": 50})
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Export: every chart as PNG (the modebar's camera) and as the data it draws (CSV)


def png_config(name: str) -> dict:
    """Plotly config for every chart: the modebar's camera button saves `name`.png at twice the screen size."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}}


def axis_title(fig: go.Figure, ref: str | None, letter: str) -> str:
    """The title of the axis a trace is drawn on ('x', 'x2', 'y3', …; None = the first)."""
    suffix = (ref or letter)[1:]
    title = fig.layout[f"{letter}axis{suffix}"].title.text
    return title or ""


def _per_point(values: object, n: int) -> list | None:
    """A trace attribute as one value per point, or None if it is a single value or absent."""
    if values is None or isinstance(values, (str, int, float)):
        return None
    values = list(values)
    return values if len(values) == n else None


def _trace_frame(fig: go.Figure, trace: go.Bar | go.Scatter | go.Scattergl) -> pd.DataFrame | None:
    x, y = getattr(trace, "x", None), getattr(trace, "y", None)
    if x is None or y is None:
        return None
    frame = pd.DataFrame({"series": trace.name or trace.type, "x": list(x), "y": list(y)})
    error = getattr(trace, "error_y", None)
    if error is not None and error.array is not None:
        high = pd.to_numeric(pd.Series(list(error.array)), errors="coerce").to_numpy()
        low = high if error.arrayminus is None else pd.to_numeric(pd.Series(list(error.arrayminus))).to_numpy()
        value = pd.to_numeric(frame["y"], errors="coerce")
        frame["y_low"], frame["y_high"] = value - low, value + high
    colour = _per_point(getattr(trace.marker, "color", None), len(frame))
    if colour is not None and pd.api.types.is_numeric_dtype(pd.Series(colour)):
        frame["colour"] = colour
        frame["colour_means"] = trace.marker.colorbar.title.text or ""
    label = _per_point(getattr(trace, "hovertext", None), len(frame)) or _per_point(trace.text, len(frame))
    if label is not None:
        frame["label"] = label
    frame["x_axis"], frame["y_axis"] = axis_title(fig, trace.xaxis, "x"), axis_title(fig, trace.yaxis, "y")
    return frame.dropna(subset=["x", "y"], how="all")


def figure_data(fig: go.Figure) -> pd.DataFrame:
    """What a figure draws, one row per point: its series (legend entry), x, y, the ends of its error bar
    (y_low, y_high) where one is drawn, its colour value and hover label where they carry data, and the titles (with
    units) of the axes it is read against. Lines, annotations and shapes that are not traces are left out."""
    frames = [f for f in (_trace_frame(fig, t) for t in fig.data) if f is not None]
    columns = ["series", "x", "y", "x_axis", "y_axis"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
