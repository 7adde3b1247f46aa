"""Chart builders for the Training and Forgetting & dynamics pages: pure functions from store frames to Plotly figures.

Inputs: `train_steps` frames as the store returns them, and checkpoint tables from `salad_core.analysis.checkpoints`
(one row per run and evaluated step: run_id, alpha, step, tokens, speech_hours, F, M, text_acc, speech_acc, …).
Runs are coloured by their distillation weight α on one scale (0 = plain NLL, 1 = pure distillation), so curves of
the same α share a colour and the power-law overlay of an α is drawn dashed in that colour.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from salad_core.analysis import Efficiency
from salad_core.fitting import LinearFit, PowerLawFit

ALPHA_SCALE = "Viridis"
NO_ALPHA_COLOR = "#888888"
X_TITLES = {"step": "optimizer step", "tokens": "training tokens (text tokens seen)",
            "speech_hours": "natural speech seen (hours)"}
Y_TITLES = {"F": "F: KL(original ‖ adapted) on text (nats/token)",
            "M": "M: KL(text input ‖ speech input) (nats/token)",
            "text_acc": "text accuracy, adapted model (fraction)", "speech_acc": "speech accuracy (fraction)",
            "text_acc_base": "text accuracy, original LLM (fraction)"}
LOSS_PARTS = {"loss": "total loss", "kl": "KL to the teacher", "nll": "NLL",
              "ctc": "CTC per CTC target (alignment aid)"}
UNITS = {"tokens": "text tokens (where KL and NLL are taken)",
         "ctc_targets": "CTC targets (speech-span tokens; all the CTC warm-up counts)"}
LR_PARTS = {"lr_adapter": "adapter", "lr_llm": "LLM"}
EVAL_LABELS = {"text_acc_base": "text · original LLM", "text_acc": "text · adapted", "speech_acc": "speech · adapted",
               "F": "F (forgetting)", "M": "M (misalignment)"}


def alpha_color(alpha: float | None) -> str:
    if alpha is None or not math.isfinite(alpha):
        return NO_ALPHA_COLOR
    return sample_colorscale(ALPHA_SCALE, [min(max(float(alpha), 0.0), 1.0)])[0]


def alpha_text(alpha: float | None) -> str:
    return "α = ?" if alpha is None or not math.isfinite(alpha) else f"α = {alpha:g}"


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, legend: str, **extra) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, legend_title_text=legend,
                      showlegend=True, margin={"t": 50}, **extra)
    return fig


def _lines(frame: pd.DataFrame, x: str, parts: dict[str, str]) -> list[go.Scatter]:
    return [go.Scatter(name=label, x=frame[x].tolist(), y=frame[col].tolist(), mode="lines")
            for col, label in parts.items() if col in frame and frame[col].notna().any()]


# ---------------------------------------------------------------------------------------------------------------
# One run, live


def loss_curves(steps: pd.DataFrame) -> go.Figure:
    """Total loss and its parts (KL, NLL, CTC) per optimizer step; replay steps marked."""
    fig = go.Figure(_lines(steps, "step", LOSS_PARTS))
    if "replay" in steps and steps["replay"].fillna(False).astype(bool).any():
        replay = steps[steps["replay"].fillna(False).astype(bool)]
        fig.add_trace(go.Scatter(name="text-only replay step", x=replay["step"].tolist(), y=replay["loss"].tolist(),
                                 mode="markers", marker={"size": 4, "color": "#999"}))
    return _layout(fig, "Training loss", X_TITLES["step"],
                   "nats per text position (CTC, and the CTC warm-up's loss: per CTC target)", "part")


def unit_curves(steps: pd.DataFrame) -> go.Figure:
    """What the run has trained on by each step, each unit on its own line: text tokens and, with the alignment aid,
    CTC targets (in the CTC warm-up only these grow)."""
    shown = {c: label for c, label in UNITS.items() if c in steps and steps[c].fillna(0).gt(0).any()}
    fig = go.Figure(_lines(steps, "step", shown))
    return _layout(fig, "Trained on", X_TITLES["step"], "count (cumulative)", "unit")


def lr_curves(steps: pd.DataFrame) -> go.Figure:
    """Learning rate of each parameter group per step (warmup, stable, decay)."""
    fig = go.Figure(_lines(steps, "step", LR_PARTS))
    return _layout(fig, "Learning rate", X_TITLES["step"], "learning rate", "parameter group",
                   yaxis_exponentformat="e")


def eval_curves(points: pd.DataFrame, metrics: tuple[str, ...], title: str, y_title: str,
                x: str = "step") -> go.Figure:
    """Evaluation metrics of one run against `x` (one line per metric)."""
    frame = points.sort_values(x) if x in points else points
    fig = go.Figure([go.Scatter(name=EVAL_LABELS.get(m, m), x=frame[x].tolist(), y=frame[m].tolist(),
                                mode="lines+markers") for m in metrics if m in frame and frame[m].notna().any()])
    return _layout(fig, title, X_TITLES.get(x, x), y_title, "metric")


# ---------------------------------------------------------------------------------------------------------------
# Many runs: dynamics


def _run_traces(points: pd.DataFrame, x: str, y: str, mode: str = "lines+markers") -> list[go.Scatter]:
    traces = []
    for run_id, run in points.dropna(subset=[x, y]).groupby("run_id", sort=False):
        alpha = run["alpha"].iloc[0]
        run = run.sort_values(x)
        traces.append(go.Scatter(name=f"{run_id} · {alpha_text(alpha)}", x=run[x].tolist(), y=run[y].tolist(),
                                 mode=mode, line={"color": alpha_color(alpha)}, legendgroup=alpha_text(alpha),
                                 hovertemplate=f"%{{x:.4g}}: %{{y:.4g}}<extra>{run_id}</extra>"))
    return traces


def _fit_trace(points: pd.DataFrame, x: str, alpha: float, fit: PowerLawFit) -> go.Scatter | None:
    span = points.loc[(points["alpha"] == alpha) & (points[x] > 0), x]
    if not fit.ok or span.empty:
        return None
    grid = np.geomspace(span.min(), span.max(), 60)
    return go.Scatter(name=f"power law {alpha_text(alpha)}: E={fit.e:.3g}, B={fit.b:.3g}, β={fit.beta:.2g}",
                      x=grid.tolist(), y=fit.predict(grid).tolist(), mode="lines", legendgroup=alpha_text(alpha),
                      line={"color": alpha_color(alpha), "dash": "dash", "width": 2})


def dynamics_curves(points: pd.DataFrame, metric: str, x: str = "tokens",
                    fits: dict[float, PowerLawFit] | None = None) -> go.Figure:
    """`metric` against training tokens or speech hours, one line per run coloured by α, power-law fits dashed."""
    fig = go.Figure(_run_traces(points, x, metric))
    for alpha, fit in (fits or {}).items():
        trace = _fit_trace(points, x, alpha, fit)
        if trace is not None:
            fig.add_trace(trace)
    name = Y_TITLES.get(metric, metric).split(" (")[0]
    return _layout(fig, f"{name} during training", X_TITLES.get(x, x), Y_TITLES.get(metric, metric), "run")


def fit_scatter(points: pd.DataFrame, x: str, y: str, fit: LinearFit | None, log_x: bool = False,
                models: pd.DataFrame | None = None) -> go.Figure:
    """Checkpoints as points coloured by α, with the least-squares line (in ln x when `log_x`) and its R² and LOO R²;
    `models` (`analysis.speech_llm_points`), evaluated speech LLMs, beside them as labelled diamonds (not fitted)."""
    frame = points.dropna(subset=[x, y])
    if log_x:
        frame = frame[frame[x] > 0]
    fig = go.Figure()
    others = models.dropna(subset=[x, y]) if models is not None and not models.empty else None
    if others is not None and log_x:
        others = others[others[x] > 0]
    if others is not None and not others.empty:
        fig.add_trace(go.Scatter(name="speech LLMs (salad eval --speech-llm)", x=others[x].tolist(),
                                 y=others[y].tolist(), mode="markers+text", text=others["label"].tolist(),
                                 textposition="top center", marker={"symbol": "diamond", "size": 11, "color": "#d62728"},
                                 hovertemplate="%{text}: %{x:.4g}, %{y:.3f}<extra></extra>"))
    for alpha, group in frame.groupby("alpha", sort=True, dropna=False):
        fig.add_trace(go.Scatter(name=alpha_text(alpha), x=group[x].tolist(), y=group[y].tolist(), mode="markers",
                                 marker={"color": alpha_color(alpha), "size": 8}, text=group["run_id"].tolist(),
                                 hovertemplate="%{text}: %{x:.4g}, %{y:.3f}<extra></extra>"))
    if fit is not None and not frame.empty:
        grid = (np.geomspace if log_x else np.linspace)(frame[x].min(), frame[x].max(), 50)
        fitted = fit.predict(np.log(grid) if log_x else grid)
        fig.add_trace(go.Scatter(name=f"fit: R² = {fit.r2:.2f}, LOO R² = {fit.loo_r2:.2f} (n = {fit.n})",
                                 x=grid.tolist(), y=fitted.tolist(), mode="lines",
                                 line={"color": "#222", "dash": "dot"}))
    y_name = Y_TITLES.get(y, y).split(" (")[0]
    x_name = ("log " if log_x else "") + x
    x_title = Y_TITLES.get(x, x) + (", log scale" if log_x else "")
    return _layout(fig, f"{y_name} vs {x_name} across checkpoints", x_title, Y_TITLES.get(y, y), "checkpoints",
                   xaxis_type="log" if log_x else "linear")


def efficiency_curves(points: pd.DataFrame, efficiency: Efficiency | None = None) -> go.Figure:
    """Speech accuracy against hours of natural speech, one line per run coloured by α; each compared α's smoothed
    (monotone) curve dashed, the target marked."""
    fig = go.Figure(_run_traces(points, "speech_hours", "speech_acc"))
    if efficiency is not None:
        for alpha, (hours, smooth) in efficiency.curves.items():
            fig.add_trace(go.Scatter(name=f"{alpha_text(alpha)}, smoothed", x=list(hours), y=list(smooth),
                                     mode="lines", line={"dash": "dash", "color": alpha_color(alpha)}))
        fig.add_hline(y=efficiency.target, line_dash="dot", line_color="#444",
                      annotation_text=f"final of {alpha_text(efficiency.reference)}: {efficiency.target:.3f}")
        reached = [(efficiency.reference, efficiency.reference_hours), (efficiency.alpha, efficiency.hours)]
        reached = [(a, h) for a, h in reached if math.isfinite(h)]
        fig.add_trace(go.Scatter(name="first reaches the target", x=[h for _, h in reached],
                                 y=[efficiency.target] * len(reached), mode="markers",
                                 marker={"symbol": "x", "size": 12, "color": [alpha_color(a) for a, _ in reached]}))
    return _layout(fig, "Data efficiency: speech accuracy vs natural speech", X_TITLES["speech_hours"],
                   Y_TITLES["speech_acc"], "run")
