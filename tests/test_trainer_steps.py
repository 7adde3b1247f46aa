"""One optimizer step of the trainer, in process on the `nano` world: what it clips and what it logs.

Gradient clipping covers the parameters that learn at that step: before `llm_unfreeze_step` the LLM's rate is 0, and
its gradients must not shrink the adapter's step. The loss and its KL are logged per text position; the alignment
aid's CTC per token of the speech spans (its CTC targets) in both phases (CTC warm-up and distillation), so that its
curve means the same thing across the switch; the warm-up reads no text, so its steps count CTC targets, not text
tokens."""

from __future__ import annotations

import pytest

from salad_core.store import Store
from salad_core.train.config import TrainConfig
from salad_core.train.trainer import DistillTrainer


def nano_trainer(tmp_path, monkeypatch, **options) -> DistillTrainer:
    """A set-up trainer of `max_steps=4` on nano, with its own data folder and store."""
    monkeypatch.setenv("SALAD_DATA", str(tmp_path))
    config = TrainConfig(preset="nano", max_steps=4, batch_size=2, warmup_steps=1, eval_every=100, ckpt_every=100,
                         **options)
    trainer = DistillTrainer(config, Store(tmp_path / "store.duckdb"))
    trainer.setup()
    return trainer


def test_clipping_leaves_out_the_llm_until_it_learns(tmp_path, monkeypatch):
    trainer = nano_trainer(tmp_path, monkeypatch, llm_mode="full", llm_unfreeze_step=3)
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


def heard_tokens(tokenizer, batch) -> int:
    return sum(len(tokenizer(s.text, add_special_tokens=False).input_ids)
               for segments in batch.docs for s in segments if s.is_speech)


def test_ctc_is_logged_per_speech_token_in_the_warm_up_and_in_distillation(tmp_path, monkeypatch):
    trainer = nano_trainer(tmp_path, monkeypatch, align="ctc-soft", ctc_warmup_steps=2)
    drawn = []
    next_batch = trainer.data.next_batch

    def record(*args, **kwargs):
        drawn.append(next_batch(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(trainer.data, "next_batch", record)
    steps = [trainer.train_step() for _ in range(4)]
    tokenizer = trainer.model.tokenizer
    for step, batch in zip(steps, drawn):
        heard = heard_tokens(tokenizer, batch)
        assert heard > 0 and step["ctc"] > 0 and step["n_ctc_targets"] == heard
        if batch.ctc_only:  # the warm-up's loss is the CTC alone, per CTC target; no text is read
            assert step["kl"] == 0 and step["n_text_positions"] == 0 and step["loss"] == pytest.approx(step["ctc"])
        else:  # alpha = 1: loss = (KL sum + CTC sum) / text positions, while the CTC column is CTC sum / CTC targets
            positions = step["n_text_positions"]
            assert step["kl"] > 0 and positions != heard
            assert (step["loss"] - step["kl"]) * positions == pytest.approx(step["ctc"] * heard, rel=1e-4)
    assert [b.ctc_only for b in drawn] == [True, True, False, False]
    # the counters keep the units apart: text tokens count from distillation on, CTC targets from the start
    assert [s["tokens"] for s in steps[:2]] == [0, 0]
    assert steps[3]["tokens"] == steps[2]["n_text_positions"] + steps[3]["n_text_positions"]
    assert steps[3]["ctc_targets"] == sum(s["n_ctc_targets"] for s in steps)
