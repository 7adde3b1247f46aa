"""Training-dynamics analysis over checkpoints: linear fits with leave-one-out and partial R², the saturating power
law M(D) = E + B·D^(−β) per distillation weight α, and data efficiency (hours of natural speech to reach a target).

Pure numpy / scipy / pandas, no store access: callers pass the frames the store returns (`Store.runs("train")`,
`Store.metrics(run_id)` of each run, optionally `Store.train_steps(run_id)`). `checkpoints()` turns those into one
row per (run, evaluated step); every other function works on that table or on plain arrays.
Findings this reproduces (SALAD, arXiv 2510.13632): speech accuracy falls with log M and text accuracy with F across
checkpoints; with distillation M follows the power law and its floor E falls as α grows.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit

from salad_core.eval.vocabulary import ALL_TASKS

CURVE_METRICS = ("F", "M", "item_F", "item_M", "text_acc", "speech_acc", "text_acc_base", "gap", "forgetting",
                 "misalignment")
# The paper's two scatters, each on the corpus measure (held-out documents) and on the item-level one (answer tokens
# of dev questions): key -> (accuracy, divergence, whether the divergence is taken on a log scale).
SCATTERS = {"speech_vs_log_M": ("speech_acc", "M", True), "text_vs_F": ("text_acc", "F", False),
            "speech_vs_log_item_M": ("speech_acc", "item_M", True), "text_vs_item_F": ("text_acc", "item_F", False)}
X_METRICS = ("tokens", "speech_hours")  # what curves are drawn against
BETA_STARTS = (0.05, 0.15, 0.3, 0.6, 1.0, 2.0)
BETA_BOUNDS = (1e-3, 5.0)


class AnalysisError(ValueError):
    """An analysis input is unusable; the message names it and the fix."""


def _arrays(*columns: object, names: tuple[str, ...]) -> list[np.ndarray]:
    arrays = [np.asarray(c, dtype=float).ravel() for c in columns]
    if len({len(a) for a in arrays}) > 1:
        sizes = ", ".join(f"{n}={len(a)}" for n, a in zip(names, arrays))
        raise AnalysisError(f"Inputs differ in length ({sizes}). Fix: pass one value per checkpoint in each.")
    return arrays


# ---------------------------------------------------------------------------------------------------------------
# Linear fits


@dataclass(frozen=True)
class LinearFit:
    """y ≈ intercept + slope·x over n points: in-sample R² and leave-one-out R² (from the PRESS residuals)."""

    slope: float
    intercept: float
    r2: float
    loo_r2: float
    n: int

    def predict(self, x: np.ndarray | float) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(x, dtype=float)


def _design(*columns: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(columns[0])), *columns])


def _residuals(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return y - design @ coef


def _press(design: np.ndarray, y: np.ndarray) -> float:
    """Predicted residual sum of squares: each point predicted by the fit without it, via the hat matrix."""
    leverage = np.einsum("ij,ji->i", design, np.linalg.pinv(design))
    if np.any(leverage >= 1 - 1e-12):  # a point fixes its own fit: it cannot be predicted from the others
        return math.inf
    return float(np.sum((_residuals(design, y) / (1 - leverage)) ** 2))


def _finite(*arrays: np.ndarray) -> list[np.ndarray]:
    keep = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    return [a[keep] for a in arrays]


def loo_r2(x: object, y: object) -> float:
    """Leave-one-out R² of the line y ~ x: 1 − PRESS / Σ(y − ȳ)². Non-finite pairs are dropped; needs 3 points."""
    x, y = _finite(*_arrays(x, y, names=("x", "y")))
    if len(x) < 3:
        raise AnalysisError(f"Leave-one-out R² needs at least 3 finite (x, y) pairs, got {len(x)}. "
                            "Fix: evaluate more checkpoints.")
    total = float(np.sum((y - y.mean()) ** 2))
    return math.nan if total == 0 else 1 - _press(_design(x), y) / total


def linear_fit(x: object, y: object) -> LinearFit:
    """Least-squares line through the finite (x, y) pairs with R² and leave-one-out R²."""
    x, y = _finite(*_arrays(x, y, names=("x", "y")))
    if len(x) < 3 or np.ptp(x) == 0:
        raise AnalysisError(f"A line needs at least 3 finite points with different x, got {len(x)}"
                            f"{' (all x equal)' if len(x) and np.ptp(x) == 0 else ''}. Fix: evaluate more checkpoints.")
    slope, intercept = np.polyfit(x, y, 1)
    total = float(np.sum((y - y.mean()) ** 2))
    sse = float(np.sum((y - intercept - slope * x) ** 2))
    return LinearFit(float(slope), float(intercept), math.nan if total == 0 else 1 - sse / total,
                     loo_r2(x, y), len(x))


def partial_r2(y: object, x: object, controls: object) -> float:
    """Share of the variance left in y after the controls that x explains: (SSE_controls − SSE_both) / SSE_controls.

    `controls`: one array (one control), a list of arrays (one per control) or a 2-D array with a column per control.
    """
    if isinstance(controls, (list, tuple)) and all(np.ndim(c) == 1 for c in controls):
        ctrl = np.column_stack([np.asarray(c, dtype=float) for c in controls])
    else:
        ctrl = np.asarray(controls, dtype=float)
        ctrl = ctrl.reshape(-1, 1) if ctrl.ndim == 1 else ctrl
    y, x = _arrays(y, x, names=("y", "x"))
    if ctrl.shape[0] != len(y):
        raise AnalysisError(f"controls have {ctrl.shape[0]} rows but y has {len(y)}. Fix: one row per checkpoint.")
    keep = np.isfinite(y) & np.isfinite(x) & np.isfinite(ctrl).all(axis=1)
    y, x, ctrl = y[keep], x[keep], ctrl[keep]
    if len(y) < ctrl.shape[1] + 3:
        raise AnalysisError(f"Partial R² with {ctrl.shape[1]} control(s) needs at least {ctrl.shape[1] + 3} finite "
                            f"points, got {len(y)}. Fix: evaluate more checkpoints.")
    reduced = float(np.sum(_residuals(_design(*ctrl.T), y) ** 2))
    full = float(np.sum(_residuals(_design(*ctrl.T, x), y) ** 2))
    return math.nan if reduced == 0 else (reduced - full) / reduced


# ---------------------------------------------------------------------------------------------------------------
# The saturating power law


def power_law(d: np.ndarray | float, e: float, b: float, beta: float) -> np.ndarray:
    """M(D) = E + B·D^(−β)."""
    return e + b * np.power(np.asarray(d, dtype=float), -beta)


@dataclass(frozen=True)
class PowerLawFit:
    """M(D) = E + B·D^(−β) with standard errors; `ok` False (and `message` why) when no trustworthy fit exists."""

    ok: bool
    message: str
    n: int
    e: float = math.nan
    b: float = math.nan
    beta: float = math.nan
    e_se: float = math.nan
    b_se: float = math.nan
    beta_se: float = math.nan
    r2: float = math.nan

    def predict(self, d: np.ndarray | float) -> np.ndarray:
        return power_law(d, self.e, self.b, self.beta)


def _linear_start(x: np.ndarray, m: np.ndarray) -> tuple[float, float, float]:
    """E and B are linear given β: solve them on a grid of β and keep the best as the starting point."""
    best = None
    for beta in BETA_STARTS:
        design = np.column_stack([np.ones(len(x)), np.power(x, -beta)])
        (e, b), *_ = np.linalg.lstsq(design, m, rcond=None)
        sse = float(np.sum((design @ np.array([e, b]) - m) ** 2))
        if best is None or sse < best[0]:
            best = (sse, max(float(e), 0.0), float(b), beta)
    return best[1:]


def fit_power_law(d: object, m: object) -> PowerLawFit:
    """Fit M(D) = E + B·D^(−β) (E ≥ 0, β in [0.001, 5]; B may be negative: a curve that *grows* towards E).

    D is rescaled by its geometric mean during the fit so that token counts of 1e9 stay well conditioned; E, B, β
    and their standard errors (delta method) are reported for D in the units given.
    """
    d, m = _finite(*_arrays(d, m, names=("D", "M")))
    n = len(d)
    if n < 4:
        return PowerLawFit(False, f"needs at least 4 checkpoints with finite values, got {n}", n)
    if np.any(d <= 0):
        return PowerLawFit(False, "every D (tokens or hours) must be positive; drop step-0 checkpoints", n)
    if np.unique(d).size < 3:
        return PowerLawFit(False, "needs at least 3 different values of D", n)
    scale = float(np.exp(np.mean(np.log(d))))
    x = d / scale
    start = _linear_start(x, m)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", OptimizeWarning)
            params, cov = curve_fit(power_law, x, m, p0=start, maxfev=20000,
                                    bounds=([0.0, -np.inf, BETA_BOUNDS[0]], [np.inf, np.inf, BETA_BOUNDS[1]]))
    except (RuntimeError, ValueError, OptimizeWarning) as err:
        return PowerLawFit(False, f"the fit did not converge ({err})", n)
    e, b_scaled, beta = (float(p) for p in params)
    if min(abs(beta - bound) for bound in BETA_BOUNDS) < 1e-6:
        return PowerLawFit(False, f"no saturating power law: β ran into its bound ({beta:.3g}), M does not level off "
                                  "over this range", n)
    jac = np.array([[1, 0, 0], [0, scale ** beta, b_scaled * scale ** beta * math.log(scale)], [0, 0, 1]])
    se = np.sqrt(np.clip(np.diag(jac @ cov @ jac.T), 0, None)) if np.all(np.isfinite(cov)) else np.full(3, np.nan)
    total = float(np.sum((m - m.mean()) ** 2))
    r2 = math.nan if total == 0 else 1 - float(np.sum((power_law(x, *params) - m) ** 2)) / total
    message = "ok" if np.all(np.isfinite(se)) else "fitted, but the parameters are not identifiable (no error bars)"
    return PowerLawFit(True, message, n, e, b_scaled * scale ** beta, beta, *map(float, se), r2)


def fit_power_laws(points: pd.DataFrame, x: str = "tokens", y: str = "M", by: str = "alpha") -> dict:
    """One power-law fit per value of `by` (all runs with that α pooled), from a `checkpoints()` table."""
    for col in (x, y, by):
        if col not in points:
            raise AnalysisError(f"The checkpoint table has no column {col!r}. Fix: build it with checkpoints().")
    return {key: fit_power_law(group[x], group[y]) for key, group in points.dropna(subset=[by]).groupby(by)}


def power_law_table(fits: dict) -> pd.DataFrame:
    """The fits as rows: α, E ± se, B ± se, β ± se, R², points, status."""
    rows = [{"alpha": key, "E": f.e, "E se": f.e_se, "B": f.b, "B se": f.b_se, "beta": f.beta, "beta se": f.beta_se,
             "R2": f.r2, "points": f.n, "status": f.message} for key, f in fits.items()]
    return pd.DataFrame(rows, columns=["alpha", "E", "E se", "B", "B se", "beta", "beta se", "R2", "points",
                                       "status"])


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
    h, a = _finite(*_arrays(hours, accuracy, names=("hours", "accuracy")))
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

    h, a = _finite(*_arrays(hours, accuracy, names=("hours", "accuracy")))
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


def compare_runs(finals: dict[str, pd.DataFrame], metrics: tuple[str, ...] = ("text_acc_base", "text_acc",
                 "speech_acc", "gap", "F", "M")) -> pd.DataFrame:
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
