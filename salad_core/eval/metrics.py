"""Metrics, each defined once: accuracy (acc, acc_norm), the gap and its two parts, with bootstrap intervals.

- `acc`: the option with the highest summed log-likelihood is the answer.
- `acc_norm`: the same after dividing each option's log-likelihood by its length in *characters* (as
  lm-evaluation-harness does), which removes the bias toward short options.
- gap = base text - speech; forgetting = base text - adapted text; misalignment = adapted text - speech
  (SALAD, eq. in "The problem"); gap = forgetting + misalignment holds item by item.
- audio_gain = speech - no audio: what hearing the question adds over what the options alone give away (a model that
  ignores its audio scores the same on both).

Test sets are small, so every value carries a 95 % percentile-bootstrap interval over items. Differences are
bootstrapped *paired* (the same resampled items for both lanes), which is what decides whether a gap is noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salad_core.eval.vocabulary import DIFFERENCES, LANE_ACC_METRIC, NO_CONDITION


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    description: str


METRICS = {
    m.name: m
    for m in [
        Metric("text_acc_base", True, "accuracy of the original LLM on text input"),
        Metric("text_acc", True, "accuracy of the speech-adapted model on text input"),
        Metric("speech_acc", True, "accuracy of the speech-adapted model on speech input"),
        Metric("cascade_acc", True, "accuracy of Whisper ASR -> original LLM"),
        Metric("noaudio_acc", True, "accuracy of the speech-adapted model hearing silence (the no-audio floor)"),
        Metric("audio_gain", True, "speech_acc - noaudio_acc: what the audio adds over the options alone (fraction)"),
        Metric("cascade_wer", False, "word error rate of the cascade's ASR on the spoken questions"),
        Metric("gap", False, "text_acc_base - speech_acc (fraction)"),
        Metric("forgetting", False, "text_acc_base - text_acc (fraction)"),
        Metric("misalignment", False, "text_acc - speech_acc (fraction)"),
        Metric("parse_fail", False, "generative scoring: share of a lane's answers matched to no option "
                                    "(stored per lane as parse_fail_<lane>)"),
        Metric("F", False, "token-level KL(original LLM || adapted model), text input, nats per token"),
        Metric("M", False, "token-level KL(adapted model on text || adapted model on speech), nats per token"),
    ]
}



def choose(logprobs: np.ndarray, n_chars: np.ndarray) -> tuple[int, int]:
    """(acc choice, acc_norm choice) for one item's option log-likelihoods and character lengths."""
    logprobs = np.asarray(logprobs, dtype=float)
    return int(np.argmax(logprobs)), int(np.argmax(logprobs / np.maximum(np.asarray(n_chars, dtype=float), 1)))


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_low: float
    ci_high: float
    n: int


def bootstrap_indices(n: int, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """(n_resamples, n) item indices drawn with replacement; shared across lanes for paired intervals."""
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def mean_with_ci(values: np.ndarray, resamples: np.ndarray | None = None, level: float = 0.95) -> Estimate:
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    if resamples is None:
        resamples = bootstrap_indices(values.size)
    means = values[resamples].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(values.mean()), float(low), float(high), int(values.size))


def lane_estimates(correct: dict[str, np.ndarray], seed: int = 0) -> dict[str, Estimate]:
    """Accuracies and paired differences from per-item correctness (0/1 arrays aligned over the same items)."""
    n = len(next(iter(correct.values())))
    resamples = bootstrap_indices(n, seed=seed) if n else None
    out = {}
    for lane, metric in LANE_ACC_METRIC.items():
        if lane in correct:
            out[metric] = mean_with_ci(correct[lane], resamples)
    for metric, (a, b) in DIFFERENCES.items():
        if a in correct and b in correct:
            out[metric] = mean_with_ci(np.asarray(correct[a], float) - np.asarray(correct[b], float), resamples)
    return out


def seeds_and_items(arms: dict[str, np.ndarray], weights: dict[str, float], n_resamples: int = 1000, seed: int = 0,
                    level: float = 0.95) -> Estimate:
    """A contrast over training recipes run with several seeds: sum over arms of weight x the arm's mean (over its
    seeds and the items), e.g. {"a": 1} for an accuracy, {"a": 1, "b": -1} for a difference.

    `arms[arm]` is (seeds, items): each seed's per-item values, the same items in the same order in every arm. The
    interval is a two-level bootstrap: each replicate draws every arm's seeds with replacement, then the items (one
    draw for all arms, so a difference is paired), so seed-to-seed variation is inside it, not only the items'."""
    values = {arm: np.atleast_2d(np.asarray(v, dtype=float)) for arm, v in arms.items()}
    n_items = {v.shape[1] for v in values.values()}
    if len(n_items) != 1:
        raise ValueError(f"every arm needs the same items, got {sorted(n_items)} items. Fix: align them first.")
    n = n_items.pop()
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    item_share = np.stack([np.bincount(row, minlength=n) for row in rng.integers(0, n, (n_resamples, n))]) / n
    replicates = np.zeros(n_resamples)
    point = 0.0
    for arm, weight in weights.items():
        per_seed = values[arm] @ item_share.T  # (seeds, replicates): each seed's mean over the drawn items
        drawn = rng.integers(0, per_seed.shape[0], (n_resamples, per_seed.shape[0]))
        replicates += weight * np.take_along_axis(per_seed.T, drawn, axis=1).mean(axis=1)
        point += weight * values[arm].mean()
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Estimate(float(point), float(low), float(high), n)


# -- a task's metrics, as every evaluation (salad eval, training's periodic one) computes and stores them ---------


def pred_column(scoring: str) -> str:
    """The output column of the option a lane picked under `scoring` (a free answer is matched to one option, so
    both columns agree for "generate")."""
    return "pred_norm" if scoring == "acc_norm" else "pred"


def correct_column(scoring: str) -> str:
    """The output column that says whether that option is the answer."""
    return "correct_norm" if scoring == "acc_norm" else "correct"


def task_metrics(outputs: list[dict], scoring: str, seed: int) -> dict[str, object]:
    """Accuracies, differences and WER with 95 % intervals from one task's output rows."""
    key = correct_column(scoring)
    by_lane: dict[str, dict[str, bool]] = {}
    for row in outputs:
        by_lane.setdefault(row["lane"], {})[row["item_id"]] = row[key]
    common = sorted(set.intersection(*(set(v) for v in by_lane.values()))) if by_lane else []
    correct = {lane: np.array([rows[i] for i in common], dtype=float) for lane, rows in by_lane.items()}
    estimates = lane_estimates(correct, seed=seed) if common else {}
    for lane in by_lane:
        fails = [r["parse_fail"] for r in outputs if r["lane"] == lane and r.get("parse_fail") is not None]
        if fails:
            estimates[parse_fail_metric(lane)] = mean_with_ci(np.array(fails, dtype=float))
    wers = [r["wer"] for r in outputs if r["lane"] == "cascade" and r["wer"] is not None]
    if wers:
        estimates["cascade_wer"] = mean_with_ci(np.array(wers))
    return estimates


def parse_fail_metric(lane: str) -> str:
    return f"parse_fail_{lane}"


def metric_rows(task: str, estimates: dict, condition: str = NO_CONDITION) -> list[dict]:
    return [
        {"task": task, "metric": name, "value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n,
         "step": None, "condition": condition}
        for name, e in estimates.items()
    ]
