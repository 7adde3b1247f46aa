"""Training-dynamics analysis over checkpoints: the checkpoint table, the paper's scatters fitted linearly (with
leave-one-out and partial R²; the fits in salad_core/fitting.py), and data efficiency (hours of natural speech to reach
a target).

Pure numpy / scipy / pandas, no store access: callers pass the frames the store returns (`Store.runs("train")`,
`Store.metrics(run_id)` of each run, optionally `Store.train_steps(run_id)`). `checkpoints()` turns those into one
row per (run, evaluated step); every other function works on that table or on plain arrays.
Findings this reproduces (SALAD, arXiv 2510.13632): speech accuracy falls with log M and text accuracy with F across
checkpoints; with distillation M follows the power law and its floor E falls as α grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from salad_core.eval.vocabulary import ALL_TASKS, DIFFERENCES, DIVERGENCES, HEADLINE_METRICS, LANE_ACC_METRIC
from salad_core.fitting import AnalysisError, LinearFit, arrays, finite, linear_fit, partial_r2

CURVE_METRICS = (*DIVERGENCES, *LANE_ACC_METRIC.values(), *DIFFERENCES)  # a checkpoint's columns, where evaluated
# The paper's two scatters, each on the corpus measure (held-out documents) and on the item-level one (answer tokens
# of dev questions): key -> (accuracy, divergence, whether the divergence is taken on a log scale).
SCATTERS = {"speech_vs_log_M": ("speech_acc", "M", True), "text_vs_F": ("text_acc", "F", False),
            "speech_vs_log_item_M": ("speech_acc", "item_M", True), "text_vs_item_F": ("text_acc", "item_F", False)}
X_METRICS = ("tokens", "speech_hours")  # what curves are drawn against



# ---------------------------------------------------------------------------------------------------------------
# Checkpoint tables from the store's frames


def run_alpha(config: object) -> float:
    """The distillation weight α in a training run's config (NaN when the config does not say)."""
    value = config.get("alpha") if isinstance(config, dict) else None
    return float(value) if value is not None else math.nan


EVERY_RUN = "every training run"


def run_groups(runs: pd.DataFrame) -> dict[str, list[str]]:
    """The runs an analysis can pool: every run, then each tag's runs (a `salad sweep` tags its grid), newest tag
    first. `runs`: `Store.runs("train")`, newest first. Pooling runs of different worlds or recipes mixes their
    curves; a sweep's grid is one experiment."""
    groups = {EVERY_RUN: runs["run_id"].tolist()}
    for run_id, config in zip(runs["run_id"], runs["config"]):
        tag = config.get("tag") if isinstance(config, dict) else None
        if tag:
            groups.setdefault(f"tag {tag}", []).append(run_id)
    return groups


def checkpoints(runs: pd.DataFrame, metrics: pd.DataFrame, steps: pd.DataFrame | None = None,
                task: str = ALL_TASKS) -> pd.DataFrame:
    """One row per (run, evaluated step) of one task: run_id, alpha, step, tokens, speech_hours and the metrics.

    `runs`: `Store.runs("train")`; `metrics`: the `Store.metrics` frames of those runs concatenated; `steps`
    (optional): their `train_steps`, used where a step has no `tokens` / `speech_hours` metric. End-of-run rows
    (step NULL) are not checkpoints and are left out.
    """
    cols = ["run_id", "alpha", "step", *X_METRICS, *CURVE_METRICS]
    rows = metrics[metrics["step"].notna()] if not metrics.empty else metrics
    x_rows = rows[(rows["task"] == ALL_TASKS) & rows["metric"].isin(X_METRICS)]
    rows = pd.concat([rows[(rows["task"] == task) & ~rows["metric"].isin(X_METRICS)], x_rows])
    if rows.empty:
        return pd.DataFrame(columns=cols)
    wide = rows.pivot_table(index=["run_id", "step"], columns="metric", values="value", aggfunc="last").reset_index()
    wide = wide.reindex(columns=[c for c in cols if c != "alpha"])
    wide["step"] = wide["step"].astype(int)
    if steps is not None and not steps.empty:
        known = steps.set_index(["run_id", "step"])
        at = pd.MultiIndex.from_frame(wide[["run_id", "step"]])
        wide["tokens"] = wide["tokens"].fillna(pd.Series(known["tokens"].reindex(at).to_numpy(float), wide.index))
        hours = known["speech_s"].reindex(at).to_numpy(float) / 3600
        wide["speech_hours"] = wide["speech_hours"].fillna(pd.Series(hours, wide.index))
    alphas = {r: run_alpha(c) for r, c in zip(runs["run_id"], runs["config"])}
    wide.insert(1, "alpha", wide["run_id"].map(alphas).astype(float))
    return wide.astype({c: float for c in cols[3:]}).sort_values(["run_id", "step"]).reset_index(drop=True)


def speech_llm_points(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluation of a speech LLM (`salad eval --speech-llm`): its label and pooled end-of-run values of
    the divergences and accuracies, to place beside the training checkpoints on the paper's scatters.

    `runs`: `Store.runs("eval")`; `metrics`: the `Store.metrics` frames of those runs concatenated."""
    cols = ["run_id", "label", *DIVERGENCES, *LANE_ACC_METRIC.values()]
    chosen = {r: c["speech_llm"] for r, c in zip(runs["run_id"], runs["config"])
              if isinstance(c, dict) and c.get("speech_llm")}
    rows = metrics[metrics["run_id"].isin(chosen) & (metrics["task"] == ALL_TASKS) & metrics["step"].isna()] \
        if not metrics.empty else metrics
    if rows.empty:
        return pd.DataFrame(columns=cols)
    wide = rows.pivot_table(index="run_id", columns="metric", values="value", aggfunc="last").reset_index()
    wide["label"] = [f"{str(chosen[r]).rstrip('/').split('/')[-1]} ({r})" for r in wide["run_id"]]
    return wide.reindex(columns=cols)


def scatter_fits(points: pd.DataFrame) -> dict[str, LinearFit | str]:
    """The paper's two scatters over checkpoints, speech accuracy ~ ln M and text accuracy ~ F, on the corpus
    measure and on the item-level one (`SCATTERS`). Values are `LinearFit`s, or a string saying why a fit is missing
    (too few checkpoints, M <= 0, a metric the store does not hold)."""
    found: dict[str, LinearFit | str] = {}
    for key, (accuracy, divergence, log_x) in SCATTERS.items():
        if accuracy not in points or divergence not in points:
            found[key] = "no such metric in the store"
            continue
        x = points[divergence]
        try:
            found[key] = linear_fit(np.log(x.where(x > 0)) if log_x else x, points[accuracy])
        except AnalysisError as err:
            found[key] = str(err)
    return found


def scatter_table(fits: dict[str, LinearFit | str]) -> pd.DataFrame:
    """The fits side by side: one row per scatter and measure (corpus / items) with slope, R², LOO R², n."""
    rows = []
    for key, (accuracy, divergence, log_x) in SCATTERS.items():
        fit = fits.get(key)
        x = f"ln {divergence}" if log_x else divergence
        row = {"fit": f"{accuracy} ~ {x.replace('item_', '')}", "measure": "items" if "item_" in key else "corpus"}
        if isinstance(fit, LinearFit):
            row |= {"slope": fit.slope, "R2": fit.r2, "LOO R2": fit.loo_r2, "n": fit.n, "note": ""}
        else:
            row |= {"slope": math.nan, "R2": math.nan, "LOO R2": math.nan, "n": 0, "note": fit or "not fitted"}
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["fit", "measure"], kind="stable").reset_index(drop=True)


def partial_r2_table(points: pd.DataFrame) -> pd.DataFrame:
    """Partial R² of each cause beyond the other: speech accuracy ~ ln M | F and text accuracy ~ F | ln M."""
    log_m = np.log(points["M"].where(points["M"] > 0))
    rows = []
    for target, cause, x, control in (("speech_acc", "ln M", log_m, points["F"]),
                                      ("text_acc", "F", points["F"], log_m)):
        try:
            value, note = partial_r2(points[target], x, control), ""
        except AnalysisError as err:
            value, note = math.nan, str(err)
        rows.append({"accuracy": target, "cause": cause, "controlling for": "F" if cause == "ln M" else "ln M",
                     "partial R2": value, "note": note})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------
# Data efficiency


def hours_to_reach(hours: object, accuracy: object, target: float) -> float:
    """Hours of natural speech at which accuracy first reaches `target`, interpolated linearly between checkpoints.

    NaN when the curve never reaches it. The points are taken in order of hours.
    """
    h, a = finite(*arrays(hours, accuracy, names=("hours", "accuracy")))
    order = np.argsort(h, kind="stable")
    h, a = h[order], a[order]
    above = np.flatnonzero(a >= target)
    if above.size == 0:
        return math.nan
    i = int(above[0])
    if i == 0 or a[i] == a[i - 1]:
        return float(h[i])
    return float(h[i - 1] + (target - a[i - 1]) * (h[i] - h[i - 1]) / (a[i] - a[i - 1]))


def monotone_curve(hours: object, accuracy: object) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy against hours smoothed to never fall (isotonic regression): one (hours, accuracy) point per distinct
    hours value, in order. Points of several runs (seeds) pool into one curve; a noisy dip or peak of one checkpoint
    moves it only as much as its neighbours allow."""
    from sklearn.isotonic import IsotonicRegression

    h, a = finite(*arrays(hours, accuracy, names=("hours", "accuracy")))
    if len(h) == 0:
        return h, a
    fitted = IsotonicRegression(increasing=True).fit(h, a)
    knots = np.unique(h)
    return knots, fitted.predict(knots)


@dataclass(frozen=True)
class Efficiency:
    """How much natural speech α=`alpha` needs to reach the final speech accuracy of α=`reference`, both read from
    their runs' monotone (smoothed) accuracy-vs-hours curves."""

    alpha: float
    reference: float
    target: float  # the reference α's final accuracy on its smoothed curve
    reference_hours: float  # where the reference's smoothed curve first reaches it
    hours: float  # where `alpha`'s smoothed curve first reaches it (NaN: never)
    ratio: float  # reference_hours / hours: > 1 means `alpha` needs that many times less speech
    curves: dict = field(default_factory=dict, compare=False)  # α -> (hours, smoothed accuracy)

    def sentence(self) -> str:
        if not math.isfinite(self.hours):
            return (f"α = {self.alpha:g} never reached α = {self.reference:g}'s final speech accuracy "
                    f"({self.target:.3f} on its smoothed curve, reached at {self.reference_hours:.3g} h).")
        return (f"α = {self.alpha:g} reaches α = {self.reference:g}'s final speech accuracy ({self.target:.3f}, "
                f"smoothed) after {self.hours:.3g} h of natural speech; α = {self.reference:g} needed "
                f"{self.reference_hours:.3g} h: {self.ratio:.2g}× {'less' if self.ratio >= 1 else 'more'} speech for "
                f"α = {self.alpha:g}" + ("." if self.ratio >= 1 else f" ({1 / self.ratio:.2g}× more)."))


def data_efficiency(points: pd.DataFrame, alpha: float = 1.0, reference: float = 0.0) -> Efficiency:
    """Hours of natural speech α needs to reach the reference α's final speech accuracy. Each α's runs pool into one
    monotone accuracy-vs-hours curve (`monotone_curve`), so neither a single lucky checkpoint (a maximum) nor one run
    decides the target or the hours."""
    usable = points.dropna(subset=["speech_hours", "speech_acc"])
    curves = {}
    for value in (reference, alpha):
        group = usable[usable["alpha"] == value]
        if group.empty:
            have = ", ".join(f"{a:g}" for a in sorted(usable["alpha"].dropna().unique())) or "none"
            raise AnalysisError(f"No checkpoint of a run with α = {value:g} has speech accuracy and speech hours "
                                f"(α values with both: {have}). Fix: train that α, or pick one of those.")
        curves[value] = monotone_curve(group["speech_hours"], group["speech_acc"])
    target = float(curves[reference][1][-1])
    ref_hours, hours = hours_to_reach(*curves[reference], target), hours_to_reach(*curves[alpha], target)
    ratio = ref_hours / hours if math.isfinite(hours) and hours > 0 else math.nan
    return Efficiency(alpha, reference, target, ref_hours, hours, ratio, curves)


def compare_runs(finals: dict[str, pd.DataFrame], metrics: tuple[str, ...] = HEADLINE_METRICS) -> pd.DataFrame:
    """Final per-task values of several runs side by side: rows task, columns '<metric> · <run label>'.

    `finals`: run label → that run's metrics reduced to one row per (task, metric) (end-of-run values).
    """
    columns = {}
    for metric in metrics:
        for label, frame in finals.items():
            rows = frame[frame["metric"] == metric]
            columns[f"{metric} · {label}"] = rows.set_index("task")["value"].astype(float)
    table = pd.DataFrame(columns)
    if table.empty:
        return table
    tasks = sorted(t for t in table.index if t != ALL_TASKS) + ([ALL_TASKS] if ALL_TASKS in table.index else [])
    return table.reindex(tasks).dropna(axis=1, how="all").rename_axis("task").reset_index()
