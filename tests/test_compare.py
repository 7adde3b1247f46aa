"""Comparing recipes over seeds on what the real commands make (tests/pipeline.py): per-item answers of the final
evaluations, aligned across runs, and contrasts whose intervals resample seeds and items."""

from __future__ import annotations

import pytest

from salad_core import compare
from salad_core.eval.vocabulary import ALL_TASKS


def test_a_runs_final_evaluation_and_its_items(pipeline):
    eval_run = compare.final_eval_run(pipeline.store, pipeline.alpha1)
    assert eval_run and eval_run != pipeline.eval_run  # the training's own, not the later one with the cascade
    correct = compare.item_correctness(pipeline.store, pipeline.alpha1)
    metrics = compare.final_evaluation(pipeline.store, pipeline.alpha1)
    speech = metrics[(metrics["task"] == ALL_TASKS) & (metrics["metric"] == "speech_acc")]["value"].iloc[0]
    assert correct["correct"].mean() == pytest.approx(speech) and set(correct["correct"]) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="no final evaluation"):
        compare.item_correctness(pipeline.store, "train-missing")


def test_contrasts_of_arms(pipeline):
    arms = {1: [compare.item_correctness(pipeline.store, pipeline.alpha1)],
            0: [compare.item_correctness(pipeline.store, pipeline.alpha0)]}
    one = compare.contrast(arms, {1: 1.0})
    assert one.value == pytest.approx(arms[1][0]["correct"].mean()) and one.ci_low <= one.value <= one.ci_high
    diff = compare.contrast(arms, {1: 1.0, 0: -1.0}, {"capitals", "animals"})
    covered = compare.per_seed(arms[1], {"capitals", "animals"})[0] - compare.per_seed(arms[0], {"capitals", "animals"})[0]
    assert diff.value == pytest.approx(covered) and diff.n == int(arms[1][0]["domain"].isin({"capitals", "animals"}).sum())
    twice = {1: arms[1] * 2, 0: arms[0] * 2}  # two identical seeds: the same value, and an interval no wider
    once, doubled = compare.contrast(arms, {1: 1.0, 0: -1.0}), compare.contrast(twice, {1: 1.0, 0: -1.0})
    assert doubled.value == pytest.approx(once.value)
    assert doubled.ci_high - doubled.ci_low == pytest.approx(once.ci_high - once.ci_low)
    assert once.ci_high - once.ci_low > 0  # the items' variation is inside it
