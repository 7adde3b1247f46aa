"""Fits over checkpoints: linear fits with leave-one-out R² and partial R², and the saturating power law
M(D) = E + B·D^(−β) that the paper fits to misalignment against training data.

Pure numpy / scipy on plain arrays; `salad_core.analysis` builds the checkpoint tables they are fitted on.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit

from salad_core.errors import InputError

BETA_STARTS = (0.05, 0.15, 0.3, 0.6, 1.0, 2.0)
BETA_BOUNDS = (1e-3, 5.0)


class AnalysisError(InputError):
    """An analysis input is unusable; the message names it and the fix."""


def arrays(*columns: object, names: tuple[str, ...]) -> list[np.ndarray]:
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


def finite(*arrays: np.ndarray) -> list[np.ndarray]:
    keep = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    return [a[keep] for a in arrays]


def loo_r2(x: object, y: object) -> float:
    """Leave-one-out R² of the line y ~ x: 1 − PRESS / Σ(y − ȳ)². Non-finite pairs are dropped; needs 3 points."""
    x, y = finite(*arrays(x, y, names=("x", "y")))
    if len(x) < 3:
        raise AnalysisError(f"Leave-one-out R² needs at least 3 finite (x, y) pairs, got {len(x)}. "
                            "Fix: evaluate more checkpoints.")
    total = float(np.sum((y - y.mean()) ** 2))
    return math.nan if total == 0 else 1 - _press(_design(x), y) / total


def linear_fit(x: object, y: object) -> LinearFit:
    """Least-squares line through the finite (x, y) pairs with R² and leave-one-out R²."""
    x, y = finite(*arrays(x, y, names=("x", "y")))
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
    y, x = arrays(y, x, names=("y", "x"))
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
    d, m = finite(*arrays(d, m, names=("D", "M")))
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
