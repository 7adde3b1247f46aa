"""A NaN loss or a full disk ends a run as 'failed' with a message that says why; the store stays readable."""

from __future__ import annotations

import errno

import pytest

from salad_core.store import Store
from salad_core.train import trainer as trainer_module
from salad_core.train.config import TrainConfig
from salad_core.train.step import DistillationStep
from salad_core.train.trainer import DistillTrainer, TrainingError


@pytest.fixture
def trainer(tmp_path, monkeypatch):
    monkeypatch.setenv("SALAD_DATA", str(tmp_path))
    config = TrainConfig(preset="nano", max_steps=4, batch_size=2, warmup_steps=1, eval_every=100, ckpt_every=2)
    return DistillTrainer(config, Store(tmp_path / "store.duckdb"))


def failed_run(store: Store) -> str:
    runs = store.runs("train")
    assert runs["status"].tolist() == ["failed"]
    return runs["error"].iloc[0]


def test_nan_loss_fails_the_run_with_a_clear_message(trainer, monkeypatch):
    forward = DistillationStep.forward

    def poisoned(self, batch):
        out = forward(self, batch)
        return {**out, "loss": out["loss"] * float("nan")}

    monkeypatch.setattr(DistillationStep, "forward", poisoned)
    with pytest.raises(TrainingError, match="loss is nan at step 1"):
        trainer.train()
    assert "lower the learning rates" in failed_run(trainer.store)


def test_full_disk_fails_the_run_and_keeps_the_store_readable(trainer, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(trainer_module.ckpt, "save_checkpoint", full)
    with pytest.raises(TrainingError, match="the disk is full"):
        trainer.train()
    assert "No space left" in failed_run(trainer.store)
    assert trainer.store.train_steps(trainer.run_id)["step"].tolist() == [1, 2]  # what was computed is kept
