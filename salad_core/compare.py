"""Comparing training recipes over seeds, on their final models' answers to the same items.

A recipe's *arm* is its runs, one per seed (the Stage I seed; for Stage II the selection seed as well), and every
run's final evaluation scored the same items. `item_correctness` reads one run's per-item answers; `arm_values`
aligns an arm's runs into (seeds, items) over the items every run of every compared arm has; `contrast` gives an
arm's accuracy, or a difference of arms, with a 95 % interval that resamples seeds, then items
(`eval.metrics.seeds_and_items`), so that seed-to-seed variation is inside it; `per_seed` lists the seeds' values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salad_core.errors import InputError
from salad_core.eval.metrics import Estimate, correct_column, seeds_and_items
from salad_core.eval.vocabulary import HEADLINE_SCORING
from salad_core.store import Store


def final_eval_run(store: Store, run_id: str) -> str | None:
    """The `salad eval` run of a training run's final model (the store's `final_eval`: the first evaluation of that
    model, since a user may evaluate it again later on other items or voices), if there is one."""
    runs = store.runs("train").set_index("run_id")
    value = runs["final_eval"].get(run_id) if "final_eval" in runs else None
    return value if isinstance(value, str) and value else None


def final_evaluation(store: Store, run_id: str) -> pd.DataFrame:
    """The metrics of the final evaluation of a training run (`final_eval_run`); empty if there is none."""
    eval_run = final_eval_run(store, run_id)
    return store.metrics(eval_run) if eval_run else pd.DataFrame(columns=["task", "metric", "value", "ci_low", "ci_high"])


def eval_correctness(store: Store, eval_run: str, lane: str = "speech") -> pd.DataFrame:
    """Per item (index item_id) that one lane of an evaluation answered: its task, domain and correctness (0/1),
    by the evaluation's own scoring, as its metrics were computed."""
    items = store.paired_items(eval_run).set_index("item_id")
    config = store.runs("eval").set_index("run_id")["config"].get(eval_run) or {}
    column = f"{lane}_{correct_column(config.get('scoring', HEADLINE_SCORING))}"
    if column not in items or items[column].isna().all():
        raise InputError(f"evaluation {eval_run} has no {lane!r} answers. Fix: score it with --lanes {lane},...")
    items = items[items[column].notna()]
    return pd.DataFrame({"task": items["task"], "domain": items["domain"], "correct": items[column].astype(float)})


def item_correctness(store: Store, run_id: str, lane: str = "speech") -> pd.DataFrame:
    """Per item (index item_id) of a training run's final evaluation: its domain and the lane's correctness (0/1)."""
    eval_run = final_eval_run(store, run_id)
    if eval_run is None:
        raise InputError(f"run {run_id} has no final evaluation. Fix: salad eval --model data/runs/{run_id}/final")
    return eval_correctness(store, eval_run, lane)[["domain", "correct"]]


def arm_values(arms: dict[str, list[pd.DataFrame]], domains: set[str] | None = None) -> dict[str, np.ndarray]:
    """Each arm's (seeds, items) correctness over the items of `domains` (None: all) that every frame has."""
    frames = [f if domains is None else f[f["domain"].isin(domains)] for runs in arms.values() for f in runs]
    common = sorted(set.intersection(*(set(f.index) for f in frames))) if frames else []
    return {arm: np.stack([f.loc[common, "correct"].to_numpy(float) if domains is None else
                           f[f["domain"].isin(domains)].loc[common, "correct"].to_numpy(float) for f in runs])
            for arm, runs in arms.items()}


def contrast(arms: dict[str, list[pd.DataFrame]], weights: dict[str, float], domains: set[str] | None = None,
             seed: int = 0) -> Estimate:
    """sum of weight x arm accuracy (e.g. {"a": 1} or {"a": 1, "b": -1}) over `domains`, seeds and items resampled."""
    return seeds_and_items(arm_values({a: arms[a] for a in weights}, domains), weights, seed=seed)


def per_seed(runs: list[pd.DataFrame], domains: set[str] | None = None) -> list[float]:
    """Each run's accuracy over the items of `domains`."""
    return [float(f.loc[f["domain"].isin(domains) if domains else slice(None), "correct"].mean()) for f in runs]
