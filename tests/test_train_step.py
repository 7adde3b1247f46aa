"""One training forward on tiny models: where the loss is taken, what it is, and where gradients go."""

import pytest
import torch

from salad_core.model.processing import Segment
from salad_core.train.step import Batch, DistillationStep
from salad_core.eval.vocabulary import ALL_TASKS
from tests.tiny_models import tiny_salad


def speech_batch(model) -> Batch:
    docs = [[Segment("the capital of"), Segment(" france", clip_id="c1"), Segment(" is paris .")],
            [Segment(" three plus four", clip_id="c2"), Segment(" is seven")]]
    torch.manual_seed(1)
    frames = [torch.randn(40, model.encoder.hidden_size), torch.randn(55, model.encoder.hidden_size)]
    return Batch(docs=docs, frames=frames, speech_s=1.9)


def test_text_only_batch_with_a_frozen_llm_has_zero_kl():
    model = tiny_salad("frozen")
    out = DistillationStep(model, alpha=1.0)(Batch(docs=[[Segment("one two three four")]], replay=True))
    assert out["kl"].item() == pytest.approx(0.0, abs=1e-5)  # the student reads text exactly as the teacher
    assert out["nll"].item() > 0 and out["n"].item() == 3


def test_speech_batch_loss_is_the_alpha_mix_and_trains_only_the_adapter():
    model = tiny_salad("frozen")
    step = DistillationStep(model, alpha=0.25, kl_chunk=4)
    out = step(speech_batch(model))
    assert out["kl"].item() > 0
    assert out["loss"].item() == pytest.approx(0.25 * out["kl"].item() + 0.75 * out["nll"].item(), rel=1e-5)
    out["loss"].backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad and all(n.startswith("adapter.") for n in with_grad)


def test_alpha_zero_runs_no_teacher_and_lora_trains_the_llm_too():
    model = tiny_salad("lora")
    out = DistillationStep(model, alpha=0.0)(speech_batch(model))
    assert out["kl"].item() == 0.0
    out["loss"].backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert any("lora_" in n for n in grads) and any(n.startswith("adapter.") for n in grads)


def test_ctc_alignment_aid_adds_its_loss_and_compresses_speech():
    from salad_core.model.config import SaladConfig
    from salad_core.model.modeling import SaladModel
    from tests.tiny_models import smol_tokenizer, tiny_encoder, tiny_llm

    config = SaladConfig(llm_name="t", encoder_name="t", adapter_layers=1, adapter_width=32, adapter_heads=2,
                         ctc_compress=True)
    model = SaladModel(config, encoder=tiny_encoder(), llm=tiny_llm(), tokenizer=smol_tokenizer())
    batch = speech_batch(model)
    out = DistillationStep(model, alpha=1.0)(batch)
    assert out["ctc"].item() > 0
    out["loss"].backward()
    assert model.ctc.blank.weight.grad is not None
    full, logits = model.adapt_frames_with_ctc(batch.frames)
    compressed = model.adapt_frames(batch.frames)
    assert all(1 <= c.shape[0] <= f.shape[0] for c, f in zip(compressed, full))
    assert any(k.startswith("ctc.") for k in model.trained_state_dict())
    from salad_core.model.ctc import greedy_tokens

    # the LLM reads one frame per token the aid spells out (one frame when it spells nothing)
    assert [max(len(greedy_tokens(l)), 1) for l in logits] == [c.shape[0] for c in compressed]
    assert len(model.heard_words(batch.frames)) == len(batch.frames)
    plain = SaladModel(SaladConfig(llm_name="t", encoder_name="t", adapter_layers=1, adapter_width=32,
                                   adapter_heads=2), encoder=tiny_encoder(), llm=tiny_llm(), tokenizer=smol_tokenizer())
    with pytest.raises(ValueError, match="no CTC head"):
        plain.heard_words(batch.frames)


def test_compress_keeps_new_non_blank_frames():
    from salad_core.model.ctc import compress

    embeds = torch.arange(6.0)[:, None]
    # labels per frame: 2 2 blank 1 1 blank (blank = class 3)
    logits = torch.nn.functional.one_hot(torch.tensor([2, 2, 3, 1, 1, 3]), 4).float()
    assert compress(embeds, logits).flatten().tolist() == [0.0, 3.0]
    all_blank = torch.nn.functional.one_hot(torch.tensor([3, 3]), 4).float() + torch.tensor([0, 0.5, 0, 0])
    assert compress(embeds[:2], all_blank).shape[0] == 1


def test_greedy_tokens_collapse_repeats_and_drop_blanks():
    from salad_core.model.ctc import greedy_tokens

    # labels per frame: 2 2 blank 2 1 1 0 (blank = class 3): a blank between two 2s keeps both
    logits = torch.nn.functional.one_hot(torch.tensor([2, 2, 3, 2, 1, 1, 0]), 4).float()
    assert greedy_tokens(logits) == [2, 2, 1, 0]
    assert greedy_tokens(torch.nn.functional.one_hot(torch.tensor([3, 3]), 4).float()) == []


def test_soft_tokens_are_the_vocabulary_under_the_ctc_posterior_and_pass_its_gradient():
    from salad_core.model.ctc import compress

    vocabulary = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])  # V = 3 tokens, D = 2
    # frame 0 sure of token 1, frame 1 blank (class 3), frame 2 split between tokens 0 and 2
    logits = torch.tensor([[-30.0, 30.0, -30.0, -30.0], [0.0, 0.0, 0.0, 30.0], [5.0, -30.0, 5.0, 0.0]],
                          requires_grad=True)
    soft = compress(torch.zeros(3, 2), logits, vocabulary)
    assert torch.allclose(soft, torch.tensor([[0.0, 2.0], [2.0, 1.5]]), atol=1e-5)
    soft.sum().backward()
    assert logits.grad[2, :3].abs().sum() > 0  # the adapter learns through the posterior


def test_ctc_soft_training_reads_soft_tokens_of_the_llms_own_embeddings():
    from salad_core.model.config import SaladConfig
    from salad_core.model.modeling import SaladModel
    from salad_core.train.config import ALIGN_MODEL
    from tests.tiny_models import smol_tokenizer, tiny_encoder, tiny_llm

    config = SaladConfig(llm_name="t", encoder_name="t", adapter_layers=1, adapter_width=32, adapter_heads=2,
                         **ALIGN_MODEL["ctc-soft"])
    model = SaladModel(config, encoder=tiny_encoder(), llm=tiny_llm(), tokenizer=smol_tokenizer())
    batch = speech_batch(model)
    table = model.llm.get_input_embeddings().weight
    for clip in model.adapt_frames(batch.frames):  # convex combinations of rows: inside the rows' bounding box
        assert (clip >= table.min(0).values - 1e-4).all() and (clip <= table.max(0).values + 1e-4).all()
    out = DistillationStep(model, alpha=1.0)(batch)
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.adapter.parameters())


def test_periodic_evaluation_names_each_task_in_the_progress_message(tmp_path, monkeypatch):
    from salad_core.store import Store
    from salad_core.train.config import TrainConfig
    from salad_core.train.trainer import DistillTrainer

    monkeypatch.setenv("SALAD_DATA", str(tmp_path))
    trainer = DistillTrainer(TrainConfig(preset="nano", eval_items=1), Store(tmp_path / "store.duckdb"))
    trainer.setup()
    messages = []

    class Recorder:
        def update(self, n: int = 1, message: str | None = None) -> None:
            messages.append((n, message))

    with trainer.recorded():  # the run in the store, as training opens it
        trainer.evaluate(7, Recorder())
    assert messages == [(0, f"evaluating step 7: {d.task}") for d in trainer.world.domains] + [
        (0, "evaluating step 7: corpus F and M")]
    metrics = Store(tmp_path / "store.duckdb").metrics(trainer.run_id)
    assert set(metrics["step"]) == {7}
    # corpus F and M per domain (each domain's task) and pooled, item_F and item_M beside them
    for task in [d.task for d in trainer.world.domains] + [ALL_TASKS]:
        assert {"F", "M", "item_F", "item_M"} <= set(metrics.loc[metrics["task"] == task, "metric"])
    pooled = metrics[(metrics["task"] == ALL_TASKS) & (metrics["metric"] == "M")].iloc[0]
    probes = trainer.world.probe_set().docs
    assert pooled["value"] > 0 and pooled["n"] > len(probes)  # token-weighted over every probe document
