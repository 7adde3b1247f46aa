"""Gradient clipping covers the parameters that learn at that step: before `llm_unfreeze_step` the LLM's rate is 0,
and its gradients must not shrink the adapter's step."""

from __future__ import annotations

import pytest

from salad_core.store import Store
from salad_core.train.config import TrainConfig
from salad_core.train.trainer import DistillTrainer


def test_clipping_leaves_out_the_llm_until_it_learns(tmp_path, monkeypatch):
    monkeypatch.setenv("SALAD_DATA", str(tmp_path))
    config = TrainConfig(preset="nano", llm_mode="full", llm_unfreeze_step=3, max_steps=4, batch_size=2,
                         warmup_steps=1, eval_every=100, ckpt_every=100)
    trainer = DistillTrainer(config, Store(tmp_path / "store.duckdb"))
    trainer.setup()
    clipped: list[set[int]] = []
    clip = trainer.accelerator.clip_grad_norm_

    def record(parameters, max_norm):
        parameters = list(parameters)
        clipped.append({id(p) for p in parameters})
        return clip(parameters, max_norm)

    monkeypatch.setattr(trainer.accelerator, "clip_grad_norm_", record)
    adapter = {id(p) for p in trainer.optimizer.param_groups[0]["params"]}
    llm = {id(p) for p in trainer.optimizer.param_groups[1]["params"]}
    steps = [trainer.train_step() for _ in range(3)]
    assert [s["lr_llm"] for s in steps][:2] == [0.0, 0.0] and steps[2]["lr_llm"] > 0
    assert clipped[0] == clipped[1] == adapter  # steps 1 and 2: the LLM's rate is 0
    assert clipped[2] == adapter | llm  # step 3: the LLM learns too
    assert steps[0]["grad_norm"] == pytest.approx(steps[0]["grad_norm"])  # a number, not NaN
