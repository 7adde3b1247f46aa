"""Chart builders for the Active selection page: pure functions from selection frames to Plotly figures.

Inputs: `Store.selection_clusters` (one row per cluster: size, p_web, m, m_distill, cer, filtered, p_target,
n_selected, domain), `Store.selection_texts` (role 'member' rows: a sample of the pool, with UMAP x/y on the map),
`salad_core.select.report.domain_allocation` and `task_comparison` frames.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

M_SCALE = "Inferno"
FILTERED_COLOR = "#9e9e9e"
SHARE_COLORS = {"p_web": "#4C78A8", "p_target": "#E45756", "selected_share": "#F58518"}
SHARE_LABELS = {"p_web": "P_web: share of the corpus", "p_target": "P_target: share aimed for",
                "selected_share": "selected: share of the audio"}


def cluster_map(members: pd.DataFrame, clusters: pd.DataFrame, selected: pd.DataFrame | None = None) -> go.Figure:
    """UMAP of the sentence embeddings of a sample of the pool: each text coloured by its cluster's M(c); texts of filtered
    clusters grey crosses; texts the round selected (and drawn on the map) circled."""
    shown = members.dropna(subset=["x", "y"]).merge(clusters[["cluster", "m", "filtered", "p_target"]], on="cluster")
    fig = go.Figure()
    kept, dropped = shown[~shown["filtered"]], shown[shown["filtered"]]
    fig.add_trace(go.Scattergl(
        name="texts (colour: M of their cluster)", x=kept["x"], y=kept["y"], mode="markers",
        marker={"size": 5, "color": kept["m"], "colorscale": M_SCALE, "showscale": True,
                "colorbar": {"title": "M(c) (nats/token)"}},
        customdata=kept[["cluster", "domain", "m", "p_target"]].to_numpy(), text=kept["text"].str.slice(0, 90),
        hovertemplate="%{text}<br>cluster %{customdata[0]} · %{customdata[1]}<br>M = %{customdata[2]:.3f} · "
                      "P_target = %{customdata[3]:.3f}<extra></extra>"))
    if not dropped.empty:
        fig.add_trace(go.Scattergl(name="filtered cluster (probe speech unintelligible)", x=dropped["x"],
                                   y=dropped["y"], mode="markers", text=dropped["text"].str.slice(0, 90),
                                   marker={"size": 6, "color": FILTERED_COLOR, "symbol": "x"},
                                   hovertemplate="%{text}<extra>filtered</extra>"))
    if selected is not None and not selected.empty:
        picked = shown[shown["text_key"].isin(set(selected["text_key"]))]
        if not picked.empty:
            fig.add_trace(go.Scattergl(name="selected for synthesis", x=picked["x"], y=picked["y"], mode="markers",
                                       marker={"size": 11, "color": "rgba(0,0,0,0)",
                                               "line": {"color": "#00A6D6", "width": 2}}, hoverinfo="skip"))
    fig.update_layout(title="Cluster map: UMAP of the sentence embeddings", xaxis_title="UMAP 1 (no unit)",
                      yaxis_title="UMAP 2 (no unit)", legend={"title": {"text": "texts"}, "orientation": "h", "y": -0.15},
                      showlegend=True, margin={"t": 50})
    return fig


def misalignment_bars(clusters: pd.DataFrame, score: str = "m") -> go.Figure:
    """M(c) per cluster, sorted, with P_web and P_target on a second axis: where the budget goes and why."""
    ordered = clusters.sort_values(score, ascending=False, na_position="last")
    labels = [f"c{c} · {d}" for c, d in zip(ordered["cluster"], ordered["domain"])]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    colors = [FILTERED_COLOR if f else "#B279A2" for f in ordered["filtered"]]
    fig.add_trace(go.Bar(name="M(c) (grey: filtered)", x=labels, y=ordered[score], marker_color=colors), secondary_y=False)
    for column in ("p_web", "p_target"):
        fig.add_trace(go.Scatter(name=SHARE_LABELS[column], x=labels, y=ordered[column], mode="lines+markers",
                                 line={"color": SHARE_COLORS[column]}), secondary_y=True)
    fig.update_layout(title="Misalignment per cluster, and the share of the budget it draws", margin={"t": 50},
                      legend={"title": {"text": "per cluster"}, "orientation": "h", "y": -0.35}, showlegend=True)
    fig.update_xaxes(title_text="cluster · most common domain of its texts")
    fig.update_yaxes(title_text="M(c) (nats/token)", secondary_y=False)
    fig.update_yaxes(title_text="probability (fraction)", secondary_y=True)
    return fig


def allocation_bars(allocation: pd.DataFrame, columns: tuple[str, ...] = ("p_web", "p_target", "selected_share"),
                    covered: set[str] | None = None) -> go.Figure:
    """Per domain: share of the corpus, of the target distribution and of the selected audio."""
    names = [f"{d}{' (in natural speech)' if covered and d in covered else ''}" for d in allocation["domain"]]
    fig = go.Figure([go.Bar(name=SHARE_LABELS[c], x=names, y=allocation[c], marker_color=SHARE_COLORS[c])
                     for c in columns if c in allocation])
    fig.update_layout(barmode="group", title="Where the synthesis budget goes, per domain", xaxis_title="domain",
                      yaxis_title="share (fraction)", legend_title_text="share", showlegend=True, margin={"t": 50})
    return fig


def task_comparison_bars(comparison: pd.DataFrame, title: str, y_title: str = "speech accuracy (fraction)") -> go.Figure:
    """One bar group per task, one bar per run label, with 95 % CI error bars."""
    fig = go.Figure()
    for label, part in comparison.groupby("label", sort=False):
        part = part.sort_values("task")
        fig.add_trace(go.Bar(name=label, x=part["task"], y=part["value"],
                             error_y={"type": "data", "symmetric": False,
                                      "array": (part["ci_high"] - part["value"]).tolist(),
                                      "arrayminus": (part["value"] - part["ci_low"]).tolist()}))
    fig.update_layout(barmode="group", title=title, xaxis_title="task", yaxis_title=y_title, legend_title_text="model",
                      showlegend=True, margin={"t": 50})
    return fig


def difference_forest(table: pd.DataFrame, groups: list[str]) -> go.Figure:
    """Active − uniform per equal-budget pair and pooled (`report.equal_budget_table`): one marker with its 95 % CI
    per pair and group of domains, a line at zero. Markers right of zero: active selection answered more items."""
    fig = go.Figure()
    for group in groups:
        fig.add_trace(go.Scatter(name=group, x=table[group], y=table["pair"], mode="markers",
                                 error_x={"type": "data", "symmetric": False,
                                          "array": (table[f"{group} high"] - table[group]).tolist(),
                                          "arrayminus": (table[group] - table[f"{group} low"]).tolist()}))
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(title="Active − uniform selection at equal budget (speech accuracy, 95 % CI)",
                      xaxis_title="difference in speech accuracy (fraction of items)", yaxis_title="",
                      yaxis={"autorange": "reversed"}, legend_title_text="domains", margin={"t": 50})
    return fig
