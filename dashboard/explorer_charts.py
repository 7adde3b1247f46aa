"""Chart builders for the Misalignment explorer: pure functions from explorer frames to Plotly figures.

Inputs: `salad_core.explore.projection.map_points` (one row per item and modality: x, y, item facts, checkpoint),
the long metrics table of `salad_core.explore.cache.Representations.metrics` (layer, view, metric, value) with a
`checkpoint` column added, and per-position KL frames (position, token, kl, checkpoint).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from salad_core.explore.metrics import METRIC_LABELS, METRICS

COLOR_OPTIONS = {"modality": "modality", "task": "task", "domain": "domain", "kl": "item KL(text ‖ speech)"}
MODALITY_COLORS = {"text": "#4C78A8", "speech": "#E45756"}
MODALITY_SYMBOLS = {"text": "circle", "speech": "diamond"}
KL_SCALE = "Inferno"
KL_TITLE = "KL(text ‖ speech) (nats/token)"
PAIR_LINE = "rgba(120,120,120,0.35)"
VIEW_DASHES = ("solid", "dash", "dot")
UMAP_AXES = ("UMAP 1 (no unit)", "UMAP 2 (no unit)")
METRIC_NAMES = {"pair_cosine": "pair cosine", "norm_ratio": "norm ratio", "modality_gap": "modality gap",
                "linear_cka": "linear CKA"}  # panel titles; the y axes carry METRIC_LABELS, with units


def _hover(points: pd.DataFrame) -> list[str]:
    kl = [("—" if pd.isna(v) else f"{v:.3f}") for v in points["kl"]]
    return [f"{q}<br>{m} · {t} · {d}<br>item KL = {k} nats/token"
            for q, m, t, d, k in zip(points["question"].str.slice(0, 90), points["modality"], points["task"],
                                     points["domain"], kl)]


def _pair_lines(points: pd.DataFrame) -> go.Scattergl:
    """One line per item from its text point to its speech point (None breaks the line between pairs)."""
    wide = points.pivot_table(index="item_id", columns="modality", values=["x", "y"], aggfunc="first").dropna()
    xs = np.column_stack([wide[("x", "text")], wide[("x", "speech")], np.full(len(wide), np.nan)]).ravel()
    ys = np.column_stack([wide[("y", "text")], wide[("y", "speech")], np.full(len(wide), np.nan)]).ravel()
    return go.Scattergl(name="pair: same item, text → speech", x=xs, y=ys, mode="lines", hoverinfo="skip",
                        line={"color": PAIR_LINE, "width": 1})


def _marker_trace(part: pd.DataFrame, name: str, marker: dict) -> go.Scattergl:
    return go.Scattergl(name=name, x=part["x"], y=part["y"], mode="markers", marker={"size": 7, **marker},
                        customdata=part[["item_id"]].to_numpy(), hovertext=_hover(part),
                        hovertemplate="%{hovertext}<extra></extra>")


def _category_traces(points: pd.DataFrame, color_by: str) -> list[go.Scattergl]:
    if color_by == "modality":
        return [_marker_trace(points[points["modality"] == m], m, {"color": MODALITY_COLORS[m],
                                                                   "symbol": MODALITY_SYMBOLS[m]})
                for m in MODALITY_COLORS if (points["modality"] == m).any()]
    palette = qualitative.Plotly
    traces = []
    for i, value in enumerate(sorted(points[color_by].astype(str).unique())):
        for modality, symbol in MODALITY_SYMBOLS.items():
            part = points[(points[color_by].astype(str) == value) & (points["modality"] == modality)]
            if not part.empty:
                traces.append(_marker_trace(part, f"{value} · {modality}",
                                            {"color": palette[i % len(palette)], "symbol": symbol}))
    return traces


def _kl_traces(points: pd.DataFrame) -> list[go.Scattergl]:
    low, high = points["kl"].min(), points["kl"].max()
    traces = []
    for modality, symbol in MODALITY_SYMBOLS.items():
        part = points[points["modality"] == modality]
        traces.append(_marker_trace(part, f"{modality} (colour: item KL)", {
            "color": part["kl"], "colorscale": KL_SCALE, "cmin": low, "cmax": high, "symbol": symbol,
            "showscale": modality == "text", "colorbar": {"title": KL_TITLE}}))
    return traces


def map_ranges(points: pd.DataFrame, pad: float = 0.05) -> tuple[list[float], list[float]]:
    """Axis ranges that hold every point (with a margin): maps side by side share them."""
    def span(values: pd.Series) -> list[float]:
        low, high = float(values.min()), float(values.max())
        margin = (high - low) * pad or 1.0
        return [low - margin, high + margin]

    return span(points["x"]), span(points["y"])


def pair_map(points: pd.DataFrame, color_by: str = "modality", title: str = "Paired items",
             ranges: tuple[list[float], list[float]] | None = None) -> go.Figure:
    """UMAP map of paired items: a grey line joins each item's text point (circle) and speech point (diamond)."""
    if color_by not in COLOR_OPTIONS:
        raise ValueError(f"colour {color_by!r} is not offered. Fix: use one of {', '.join(COLOR_OPTIONS)}.")
    markers = _kl_traces(points) if color_by == "kl" else _category_traces(points, color_by)
    fig = go.Figure([_pair_lines(points), *markers])
    fig.update_layout(title=title, xaxis_title=UMAP_AXES[0], yaxis_title=UMAP_AXES[1], margin={"t": 50},
                      legend={"title": {"text": COLOR_OPTIONS[color_by]}, "orientation": "h", "y": -0.2},
                      showlegend=True, clickmode="event+select")
    if ranges is not None:
        fig.update_xaxes(range=ranges[0])
        fig.update_yaxes(range=ranges[1])
    return fig


def metric_lines(metrics: pd.DataFrame, layer: int | None = None) -> go.Figure:
    """One panel per metric against depth; a line per (checkpoint, view); the layer on the map marked."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[METRIC_NAMES.get(m, m) for m in METRICS],
                        horizontal_spacing=0.1, vertical_spacing=0.18)
    checkpoints = list(dict.fromkeys(metrics["checkpoint"]))
    views = list(dict.fromkeys(metrics["view"]))
    palette = qualitative.D3
    for n, metric in enumerate(METRICS):
        row, col = n // 2 + 1, n % 2 + 1
        for c, checkpoint in enumerate(checkpoints):
            for v, view in enumerate(views):
                part = metrics[(metrics["metric"] == metric) & (metrics["checkpoint"] == checkpoint)
                               & (metrics["view"] == view)].sort_values("layer")
                fig.add_trace(go.Scatter(
                    name=f"{checkpoint} · {view}", legendgroup=f"{checkpoint} · {view}", showlegend=n == 0,
                    x=part["layer"], y=part["value"], mode="lines+markers",
                    line={"color": palette[c % len(palette)], "dash": VIEW_DASHES[v % len(VIEW_DASHES)]}),
                    row=row, col=col)
        fig.update_xaxes(title_text="layer (0 = input embeddings)", row=row, col=col)
        fig.update_yaxes(title_text=METRIC_LABELS[metric], title_font_size=11, row=row, col=col)
    if layer is not None:
        fig.add_vline(x=layer, line={"color": "#888", "dash": "dot"})
    fig.update_layout(height=620, title="Per-layer alignment of text and speech views", margin={"t": 80},
                      legend={"title": {"text": "checkpoint · view"}, "orientation": "h", "y": -0.15},
                      showlegend=True)
    return fig


def token_kl_bars(tokens: pd.DataFrame) -> go.Figure:
    """KL(P(.|text) ‖ P(.|speech)) at each aligned position of one item, a bar group per checkpoint."""
    fig = go.Figure()
    for checkpoint, part in tokens.groupby("checkpoint", sort=False):
        labels = [f"{p}: {t!r}" for p, t in zip(part["position"], part["token"])]
        fig.add_trace(go.Bar(name=checkpoint, x=labels, y=part["kl"]))
    fig.update_layout(barmode="group", title="Token-level KL at the aligned positions (next token given)",
                      xaxis_title="position: next text token", yaxis_title=KL_TITLE, legend_title_text="checkpoint",
                      showlegend=True, margin={"t": 50})
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Clicks on the map (Streamlit selection events: {"selection": {"points": [{"customdata": [item_id], ...}]}})


def selected_items(event) -> list[str]:
    """Item ids of the points selected on one map (lines carry no customdata and are skipped)."""
    points = (event or {}).get("selection", {}).get("points", [])
    return [p["customdata"][0] for p in points if p.get("customdata")]


def newly_clicked(current: list[list[str]], previous: list[list[str]] | None) -> str | None:
    """The item clicked since the last run: on the map whose selection changed, its last point; None if none did.

    Selections persist across reruns, so an unchanged one must not reopen its item over the user's later choice."""
    previous = previous or []
    for n, picked in enumerate(current):
        if picked and picked != (previous[n] if n < len(previous) else []):
            return picked[-1]
    return None


# ---------------------------------------------------------------------------------------------------------------
# Frames for the item panel (from each checkpoint's `Representations.items`)


def item_tokens(items: dict[str, pd.DataFrame], item_id: str) -> pd.DataFrame:
    """position, token, kl, checkpoint: one row per aligned position of `item_id` in each checkpoint."""
    rows = []
    for checkpoint, frame in items.items():
        found = frame[frame["item_id"] == item_id]
        if not found.empty:
            row = found.iloc[0]
            rows += [{"position": p, "token": t, "kl": k, "checkpoint": checkpoint}
                     for p, (t, k) in enumerate(zip(row["tokens"], row["token_kl"]))]
    return pd.DataFrame(rows, columns=["position", "token", "kl", "checkpoint"])


def answer_table(items: dict[str, pd.DataFrame], item_id: str) -> pd.DataFrame:
    """One row per option: its text, whether it is right, and which lane of which checkpoint picked it."""
    table = None
    for checkpoint, frame in items.items():
        found = frame[frame["item_id"] == item_id]
        if found.empty:
            continue
        row = found.iloc[0]
        if table is None:
            table = pd.DataFrame({"option": row["choices"],
                                  "right answer": ["✓" if i == row["answer"] else "" for i in range(len(row["choices"]))]})
        for lane in ("text", "speech"):
            table[f"{checkpoint} · {lane} lane"] = ["✓" if i == row[f"{lane}_pred"] else "" for i in range(len(table))]
    return table if table is not None else pd.DataFrame(columns=["option", "right answer"])
