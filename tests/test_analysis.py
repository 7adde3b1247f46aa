"""salad_core.analysis: fits checked against brute force and known curves, and checkpoint tables built from a store.

`build_training_store` writes a small sweep through the public Store API, with curves of known form: M follows
E_α + B·D^(−β) for α > 0 and grows with data for α = 0; speech accuracy = 0.5 − 0.15·ln M, text accuracy = 0.95 − 2F
(plus small noise). tests/test_training_pages.py reuses it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from salad_core import analysis, fitting
from salad_core.eval.vocabulary import ALL_TASKS
from salad_core.schedule import lr_factor
from salad_core.store import Store

TOKENS_PER_STEP = 8192
HOURS_PER_STEP = 0.02
EVAL_EVERY = 10
POWER = {1.0: (0.15, 424.0, 0.5), 0.5: (0.35, 424.0, 0.5)}  # α: E, B, β of M(tokens)
TASK_SCALE = {"mini-capitals": 0.8, "mini-elements": 1.2}  # per-task M relative to the average
SWEEP = ((0.0, 100, 0, "done"), (0.5, 60, 1, "failed"), (1.0, 60, 2, "done"), (1.0, 100, 3, "done"))  # α, steps, seed


def true_m(alpha: float, tokens: np.ndarray) -> np.ndarray:
    if alpha == 0.0:
        return 1.0 + 0.1 * np.log1p(tokens / 2e5)
    e, b, beta = POWER[alpha]
    return e + b * tokens ** -beta


def true_f(alpha: float, tokens: np.ndarray) -> np.ndarray:
    return (0.01 + 0.09 * (1 - alpha)) * (1 - np.exp(-tokens / 3e5))


def config(alpha: float, steps: int, seed: int) -> dict:
    return {"preset": "mini", "alpha": alpha, "kl_direction": "forward", "kl_temperature": 1.0, "llm_mode": "frozen",
            "lr_adapter": 1e-3, "lr_llm": 5e-5, "max_steps": steps, "budget_tokens": None, "budget_hours": None,
            "replay_prob": 0.33, "align": "none", "seed": seed, "warmup_steps": 10, "decay_fraction": 0.2,
            "batch_size": 8, "grad_accum": 1, "eval_every": EVAL_EVERY}


def step_rows(alpha: float, steps: int, rng: np.random.Generator) -> list[dict]:
    rows = []
    for step in range(1, steps + 1):
        kl, nll = 2.0 * math.exp(-step / 30) + 0.2, 3.0 * math.exp(-step / 40) + 1.0
        factor = lr_factor(step, steps, 10, 0.2)
        rows.append({"step": step, "tokens": step * TOKENS_PER_STEP, "speech_s": step * HOURS_PER_STEP * 3600,
                     "loss": alpha * kl + (1 - alpha) * nll + rng.normal(0, 0.01), "kl": kl, "nll": nll,
                     "lr_adapter": 1e-3 * factor, "lr_llm": 5e-5 * factor, "grad_norm": 1.0, "n_text_positions": 900,
                     "replay": step % 3 == 0, "tokens_per_s": 4000.0, "wall_s": step * 2.0})
    return rows


def metric_rows(alpha: float, step: int | None, tokens: float, rng: np.random.Generator) -> list[dict]:
    m_all, f_all = float(true_m(alpha, np.float64(tokens))), float(true_f(alpha, np.float64(tokens)))
    rows = []
    for task, scale in {ALL_TASKS: 1.0, **TASK_SCALE}.items():
        m, f = m_all * scale * math.exp(rng.normal(0, 0.01)), f_all * scale
        # the item-level measure: the same causes, seen through fewer positions (noisier)
        noise = np.random.default_rng([int(10 * alpha), step or 0, len(task)]).normal(0, 0.3)  # not from `rng`
        values = {"M": m, "F": f, "item_M": 2 * m * math.exp(noise), "item_F": 1.5 * f, "speech_acc": 0.5 - 0.15 * math.log(m) + rng.normal(0, 0.01),
                  "text_acc": 0.95 - 2 * f + rng.normal(0, 0.005), "text_acc_base": 0.95}
        values.update(gap=values["text_acc_base"] - values["speech_acc"],
                      forgetting=values["text_acc_base"] - values["text_acc"],
                      misalignment=values["text_acc"] - values["speech_acc"])
        rows += [{"task": task, "metric": k, "value": v, "n": 50, "step": step} for k, v in values.items()]
    if step is not None:
        rows += [{"task": ALL_TASKS, "metric": "tokens", "value": tokens, "step": step},
                 {"task": ALL_TASKS, "metric": "speech_hours", "value": tokens / TOKENS_PER_STEP * HOURS_PER_STEP,
                  "step": step}]
    return rows


def build_training_store(path) -> Store:
    """The sweep in SWEEP: per run its train_steps, an evaluation every EVAL_EVERY steps and a final evaluation."""
    store = Store(path)
    rng = np.random.default_rng(7)
    for alpha, steps, seed, status in SWEEP:
        run_id = store.create_run("train", config(alpha, steps, seed), seed=seed, plan={"max_steps": steps},
                                  model={"model_id": f"mini-a{alpha:g}-s{seed}", "name": "mini world LM + adapter"})
        store.add_train_steps(run_id, step_rows(alpha, steps, rng))
        evals = [metric_rows(alpha, s, s * TOKENS_PER_STEP, rng) for s in range(EVAL_EVERY, steps + 1, EVAL_EVERY)]
        final = metric_rows(alpha, None, steps * TOKENS_PER_STEP, rng)
        store.add_metrics(run_id, [r for rows in evals for r in rows] + final)
        store.finish_run(run_id, status, error="RuntimeError: loss is NaN at step 61" if status == "failed" else None)
    return store


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory) -> Store:
    return build_training_store(tmp_path_factory.mktemp("sweep") / "salad.duckdb")


@pytest.fixture(scope="module")
def points(sweep_store) -> pd.DataFrame:
    runs = sweep_store.runs("train")
    metrics = pd.concat([sweep_store.metrics(r) for r in runs["run_id"]], ignore_index=True)
    return analysis.checkpoints(runs, metrics)


# ---------------------------------------------------------------------------------------------------------------
# Linear fits


def test_linear_fit_of_an_exact_line():
    fit = fitting.linear_fit([1, 2, 3, 4, 5], [3, 5, 7, 9, 11])
    assert (fit.slope, fit.intercept, fit.n) == (pytest.approx(2), pytest.approx(1), 5)
    assert fit.r2 == pytest.approx(1) and fit.loo_r2 == pytest.approx(1)
    assert fit.predict(10) == pytest.approx(21)


def test_loo_r2_matches_refitting_without_each_point():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, 15)
    y = 1.5 * x + rng.normal(0, 3, 15)
    press = 0.0
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
        press += (y[i] - intercept - slope * x[i]) ** 2
    expected = 1 - press / np.sum((y - y.mean()) ** 2)
    assert fitting.loo_r2(x, y) == pytest.approx(expected, rel=1e-9)
    assert fitting.linear_fit(x, y).loo_r2 < fitting.linear_fit(x, y).r2


def test_linear_fit_drops_non_finite_pairs_and_rejects_bad_input():
    fit = fitting.linear_fit([1, 2, np.nan, 3, 4], [2, 4, 100, 6, 8])
    assert fit.n == 4 and fit.slope == pytest.approx(2)
    with pytest.raises(analysis.AnalysisError, match=r"differ in length \(x=3, y=2\)"):
        fitting.linear_fit([1, 2, 3], [1, 2])
    with pytest.raises(analysis.AnalysisError, match="at least 3 finite points"):
        fitting.linear_fit([1, 2], [1, 2])
    with pytest.raises(analysis.AnalysisError, match="all x equal"):
        fitting.linear_fit([1, 1, 1], [1, 2, 3])


def test_partial_r2_is_the_squared_partial_correlation():
    rng = np.random.default_rng(1)
    c = rng.normal(size=40)
    x = 0.5 * c + rng.normal(size=40)
    y = 2 * x + 3 * c + rng.normal(size=40)

    def resid(a, b):
        slope, intercept = np.polyfit(b, a, 1)
        return a - intercept - slope * b

    expected = np.corrcoef(resid(y, c), resid(x, c))[0, 1] ** 2
    assert fitting.partial_r2(y, x, c) == pytest.approx(expected, rel=1e-9)
    assert fitting.partial_r2(y, x, [c]) == pytest.approx(expected, rel=1e-9)
    noise = rng.normal(size=40)
    assert fitting.partial_r2(3 * c + 0.01 * rng.normal(size=40), noise, c) < 0.1  # x adds nothing beyond c
    with pytest.raises(analysis.AnalysisError, match="controls have 3 rows but y has 40"):
        fitting.partial_r2(y, x, np.ones((3, 1)))


# ---------------------------------------------------------------------------------------------------------------
# Power law


def test_power_law_recovers_known_parameters_on_token_scale():
    d = np.geomspace(1e5, 1e9, 12)
    fit = fitting.fit_power_law(d, fitting.power_law(d, 0.2, 50.0, 0.4))
    assert fit.ok and fit.n == 12
    assert (fit.e, fit.b, fit.beta) == (pytest.approx(0.2, rel=1e-4), pytest.approx(50, rel=1e-3),
                                        pytest.approx(0.4, rel=1e-4))
    assert fit.r2 == pytest.approx(1)


def test_power_law_with_noise_lies_within_its_standard_errors():
    rng = np.random.default_rng(3)
    d = np.geomspace(1e4, 1e7, 20)
    m = fitting.power_law(d, 0.3, 20.0, 0.5) + rng.normal(0, 0.005, d.size)
    fit = fitting.fit_power_law(d, m)
    assert fit.ok and fit.message == "ok"
    assert 0 < fit.e_se < 0.05 and 0 < fit.beta_se < 0.2
    assert abs(fit.e - 0.3) < 3 * fit.e_se and abs(fit.beta - 0.5) < 3 * fit.beta_se


def test_a_growing_curve_fits_with_negative_b():
    d = np.geomspace(1e3, 1e6, 10)
    fit = fitting.fit_power_law(d, fitting.power_law(d, 1.0, -3.0, 0.3))
    assert fit.ok and fit.b == pytest.approx(-3, rel=1e-3) and fit.e == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("d, m, why", [
    ([1, 2, 3], [3, 2, 1], "at least 4 checkpoints"),
    ([0, 1, 2, 3], [4, 3, 2, 1], "must be positive"),
    ([5, 5, 5, 6], [4, 3, 2, 1], "at least 3 different values"),
])
def test_power_law_failures_are_flagged(d, m, why):
    fit = fitting.fit_power_law(d, m)
    assert not fit.ok and why in fit.message and math.isnan(fit.e)
    assert np.isnan(fit.predict(10.0))


# ---------------------------------------------------------------------------------------------------------------
# Data efficiency


def test_hours_to_reach_interpolates_the_first_crossing():
    assert analysis.hours_to_reach([0, 1, 2, 3], [0.2, 0.4, 0.6, 0.8], 0.5) == pytest.approx(1.5)
    assert analysis.hours_to_reach([3, 0, 2, 1], [0.8, 0.2, 0.6, 0.4], 0.5) == pytest.approx(1.5)  # any order
    assert analysis.hours_to_reach([1, 2, 3], [0.7, 0.2, 0.9], 0.5) == 1  # reached at the first point
    assert analysis.hours_to_reach([1, 2, 3, 4], [0.2, 0.6, 0.3, 0.9], 0.5) == pytest.approx(1.75)  # first, not last
    assert math.isnan(analysis.hours_to_reach([1, 2], [0.2, 0.3], 0.5))


def efficiency_frame() -> pd.DataFrame:
    hours = np.array([1.0, 2.0, 5.0, 10.0, 20.0])
    rows = [("nll", 0.0, h, a) for h, a in zip(hours, [0.30, 0.40, 0.50, 0.60, 0.58])]
    rows += [("kd-short", 1.0, h, a) for h, a in zip(hours[:2], [0.55, 0.65])]
    rows += [("kd-long", 1.0, h, a) for h, a in zip(hours, [0.40, 0.50, 0.70, 0.75, 0.80])]
    return pd.DataFrame(rows, columns=["run_id", "alpha", "speech_hours", "speech_acc"])


def test_monotone_curve_pools_runs_and_never_falls():
    hours, smooth = analysis.monotone_curve([1, 2, 5, 10, 20, 1, 2], [0.3, 0.4, 0.5, 0.6, 0.58, 0.5, 0.6])
    assert list(hours) == [1, 2, 5, 10, 20]
    assert list(smooth) == pytest.approx([0.4, 0.5, 0.5, 0.59, 0.59])  # equal hours averaged, the dip pooled away
    assert all(np.diff(smooth) >= 0)


def test_data_efficiency_reads_smoothed_curves_not_a_single_maximum():
    eff = analysis.data_efficiency(efficiency_frame(), alpha=1.0, reference=0.0)
    # α = 0's curve .30 .40 .50 .60 .58 smooths to ... .59 .59: its final accuracy, reached at 10 h
    assert eff.target == pytest.approx(0.59) and eff.reference_hours == pytest.approx(10.0)
    # α = 1's two runs pool into (1, .475) (2, .575) (5, .70) ...: .59 is crossed between 2 h and 5 h
    assert eff.hours == pytest.approx(2 + 3 * (0.59 - 0.575) / (0.70 - 0.575))
    assert eff.ratio == pytest.approx(10 / eff.hours)
    assert set(eff.curves) == {0.0, 1.0} and list(eff.curves[0.0][1])[-1] == pytest.approx(0.59)
    assert "reaches α = 0's final speech accuracy (0.590, smoothed) after 2.36 h" in eff.sentence()
    backwards = analysis.data_efficiency(efficiency_frame(), alpha=0.0, reference=1.0)
    assert math.isnan(backwards.hours) and "never reached α = 1's final speech accuracy (0.800" in backwards.sentence()
    with pytest.raises(analysis.AnalysisError, match=r"α = 0.5 .*\(α values with both: 0, 1\)"):
        analysis.data_efficiency(efficiency_frame(), alpha=0.5)


# ---------------------------------------------------------------------------------------------------------------
# From the store


def test_checkpoints_have_one_row_per_evaluated_step(points):
    per_run = points.groupby("run_id").size()
    assert sorted(per_run) == [6, 6, 10, 10] and len(points) == 32
    assert not points["step"].isna().any() and set(points["step"]) == set(range(10, 101, 10))
    assert sorted(points.groupby("run_id")["alpha"].first()) == [0.0, 0.5, 1.0, 1.0]
    row = points[(points["alpha"] == 0.0) & (points["step"] == 50)].iloc[0]
    assert row["tokens"] == 50 * TOKENS_PER_STEP and row["speech_hours"] == pytest.approx(1.0)
    assert row["M"] == pytest.approx(float(true_m(0.0, np.float64(50 * TOKENS_PER_STEP))), rel=0.05)


def test_checkpoints_of_one_task_and_from_train_steps(sweep_store):
    runs = sweep_store.runs("train")
    run_id = runs["run_id"].iloc[0]
    metrics = sweep_store.metrics(run_id)
    task = analysis.checkpoints(runs, metrics, task="mini-elements")
    everything = analysis.checkpoints(runs, metrics)
    assert (task["M"] / everything["M"]).between(1.1, 1.3).all() and task["tokens"].equals(everything["tokens"])
    bare = metrics[~metrics["metric"].isin(analysis.X_METRICS)]  # a trainer that wrote no tokens metric
    assert analysis.checkpoints(runs, bare)["tokens"].isna().all()
    filled = analysis.checkpoints(runs, bare, sweep_store.train_steps(run_id))
    assert filled["tokens"].tolist() == everything["tokens"].tolist()
    assert filled["speech_hours"].tolist() == pytest.approx(everything["speech_hours"].tolist())
    assert analysis.checkpoints(runs, metrics.iloc[0:0]).empty


def test_the_papers_scatters_on_the_sweep(points):
    fits = analysis.scatter_fits(points)
    speech, text = fits["speech_vs_log_M"], fits["text_vs_F"]
    assert speech.n == text.n == 32
    assert speech.slope == pytest.approx(-0.15, abs=0.02) and speech.r2 > 0.9 and speech.loo_r2 > 0.85
    assert text.slope == pytest.approx(-2.0, abs=0.15) and text.r2 > 0.9
    partial = analysis.partial_r2_table(points).set_index("accuracy")["partial R2"]
    assert partial["speech_acc"] > 0.9 and partial["text_acc"] > 0.5
    assert "at least 3 finite" in analysis.scatter_fits(points.head(2))["text_vs_F"]
    item = fits["speech_vs_log_item_M"]
    assert item.n == 32 and item.r2 < speech.r2  # the noisier item-level measure explains less
    table = analysis.scatter_table(fits)
    assert table[["fit", "measure"]].values.tolist() == [["speech_acc ~ ln M", "corpus"], ["speech_acc ~ ln M", "items"],
                                                         ["text_acc ~ F", "corpus"], ["text_acc ~ F", "items"]]
    assert table.loc[0, "R2"] == pytest.approx(speech.r2) and table.loc[1, "LOO R2"] == pytest.approx(item.loo_r2)
    missing = analysis.scatter_fits(points.drop(columns=["item_M", "item_F"]))
    assert missing["text_vs_item_F"] == "no such metric in the store"


def test_power_law_per_alpha_orders_the_floors(points):
    fits = fitting.fit_power_laws(points, "tokens", "M")
    assert set(fits) == {0.0, 0.5, 1.0}
    for alpha, (e, _, beta) in POWER.items():
        fit = fits[alpha]
        assert fit.ok and abs(fit.e - e) < 3 * fit.e_se and abs(fit.beta - beta) < 3 * fit.beta_se
    assert fits[1.0].n == 16 and fits[1.0].e < fits[0.5].e
    assert not fits[0.0].ok and "does not level off" in fits[0.0].message  # plain NLL: M keeps growing
    table = fitting.power_law_table(fits)
    assert table["alpha"].tolist() == [0.0, 0.5, 1.0] and table["points"].tolist() == [10, 6, 16]
    with pytest.raises(analysis.AnalysisError, match="no column 'hours'"):
        fitting.fit_power_laws(points, "hours")


def test_compare_runs_puts_final_values_side_by_side(sweep_store):
    runs = sweep_store.runs("train")
    finals = {}
    for run_id, alpha in zip(runs["run_id"][:2], ["a", "b"]):
        metrics = sweep_store.metrics(run_id)
        finals[alpha] = metrics[metrics["step"].isna()]
    table = analysis.compare_runs(finals, ("speech_acc", "M"))
    assert table["task"].tolist() == ["mini-capitals", "mini-elements", ALL_TASKS]
    assert list(table.columns) == ["task", "speech_acc · a", "speech_acc · b", "M · a", "M · b"]
    final_m = finals["b"].set_index(["task", "metric"]).loc[("mini-capitals", "M"), "value"]
    assert table.loc[0, "M · b"] == pytest.approx(final_m)


def test_run_groups_offer_every_run_then_each_tag_newest_first():
    runs = pd.DataFrame({"run_id": ["r4", "r3", "r2", "r1"],
                         "config": [{"tag": "grid-b"}, {"tag": "grid-a"}, {}, {"tag": "grid-b"}]})
    groups = analysis.run_groups(runs)
    assert list(groups) == [analysis.EVERY_RUN, "tag grid-b", "tag grid-a"]
    assert groups[analysis.EVERY_RUN] == ["r4", "r3", "r2", "r1"] and groups["tag grid-b"] == ["r4", "r1"]
