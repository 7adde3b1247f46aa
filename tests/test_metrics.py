"""Accuracies, the gap decomposition and bootstrap intervals."""

import numpy as np
import pytest

from salad_core.eval.metrics import bootstrap_indices, lane_estimates, mean_with_ci


def test_interval_contains_the_mean_and_shrinks_with_more_items():
    rng = np.random.default_rng(1)
    small, large = rng.integers(0, 2, 20), rng.integers(0, 2, 2000)
    s, l = mean_with_ci(small), mean_with_ci(large)
    assert s.ci_low <= s.value <= s.ci_high and l.ci_low <= l.value <= l.ci_high
    assert (l.ci_high - l.ci_low) < (s.ci_high - s.ci_low)
    assert s.n == 20


def test_gap_is_forgetting_plus_misalignment_with_paired_intervals():
    base = np.array([1, 1, 1, 1, 0, 1, 1, 0], float)
    text = np.array([1, 1, 0, 1, 0, 1, 1, 0], float)
    speech = np.array([0, 1, 0, 0, 0, 1, 0, 0], float)
    est = lane_estimates({"base_text": base, "text": text, "speech": speech})
    assert est["text_acc_base"].value == 0.75 and est["speech_acc"].value == 0.25
    assert est["gap"].value == pytest.approx(est["forgetting"].value + est["misalignment"].value)
    assert est["gap"].value == pytest.approx(0.5)
    assert est["gap"].ci_low > 0  # every item's gap is >= 0 here, so a paired resample never goes negative


def test_identical_lanes_have_a_zero_width_difference():
    x = np.array([1, 0, 1, 1, 0], float)
    est = lane_estimates({"base_text": x, "text": x.copy()})
    assert (est["forgetting"].value, est["forgetting"].ci_low, est["forgetting"].ci_high) == (0, 0, 0)


def test_bootstrap_is_seeded():
    assert (bootstrap_indices(10, 5, seed=3) == bootstrap_indices(10, 5, seed=3)).all()


def test_empty_input_is_nan_not_an_error():
    e = mean_with_ci(np.array([]))
    assert e.n == 0 and np.isnan(e.value)


def test_seeds_and_items_puts_seed_variation_inside_the_interval():
    from salad_core.eval.metrics import mean_with_ci, seeds_and_items

    rng = np.random.default_rng(0)
    items = rng.random(300) < 0.6  # one item set; three seeds that agree item by item ...
    agree = np.stack([items] * 3).astype(float)
    spread = np.stack([items, rng.random(300) < 0.4, rng.random(300) < 0.8]).astype(float)  # ... or do not
    same = seeds_and_items({"a": agree}, {"a": 1.0})
    assert same.value == pytest.approx(items.mean())
    single = mean_with_ci(items.astype(float))
    assert same.ci_high - same.ci_low == pytest.approx(single.ci_high - single.ci_low, rel=0.25)
    wide = seeds_and_items({"a": spread}, {"a": 1.0})
    assert wide.ci_high - wide.ci_low > 2 * (same.ci_high - same.ci_low)  # the seeds' disagreement widens it
    diff = seeds_and_items({"a": spread, "b": agree}, {"a": 1.0, "b": -1.0})
    assert diff.value == pytest.approx(spread.mean() - agree.mean()) and diff.ci_low < diff.value < diff.ci_high
    assert seeds_and_items({"a": agree, "b": agree}, {"a": 1.0, "b": -1.0}).ci_high == pytest.approx(0.0)  # paired
    with pytest.raises(ValueError, match="same items"):
        seeds_and_items({"a": agree, "b": agree[:, :10]}, {"a": 1.0, "b": -1.0})
