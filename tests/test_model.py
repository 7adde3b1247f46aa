"""SaladModel: interleaved sequences, a teacher that shares weights, save/load of only what was trained."""

import json

import numpy as np
import pytest
import torch

from salad_core.errors import InputError
from salad_core.model.modeling import WEIGHTS_NAME, SaladModel
from salad_core.model.processing import Segment, pair_segments
from tests.tiny_models import smol_tokenizer, tiny_encoder, tiny_llm, tiny_salad


def tone(seconds: float, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_pairing_aligns_every_text_token_across_the_two_views():
    tok = smol_tokenizer()
    segments = [Segment("The capital of"), Segment(" France", tone(0.5)), Segment(" is Paris.")]
    paired = pair_segments(tok, segments, speech_lengths=[7])
    # the student hears " France" as 7 adapter frames; the teacher reads its tokens
    assert (paired.student_ids == -1).sum() == 7 and paired.speech_spans == [(len(tok("The capital of").input_ids), 7)]
    assert torch.equal(paired.teacher_ids[paired.teacher_pred + 1], paired.targets)
    assert torch.equal(paired.student_ids[paired.student_pred + 1], paired.targets)
    # the first text token after the speech span is predicted from the span's last frame
    first_after = len(tok("The capital of").input_ids) + 7 - 1
    assert first_after in paired.student_pred.tolist()


def test_student_embeddings_splice_speech_between_text():
    model = tiny_salad()
    segments = [Segment("Question:"), Segment(" What is two plus two?", tone(1.0)), Segment("\nAnswer:")]
    paired, embeds = model.pair(segments)
    (start, length), = paired.speech_spans
    assert length == 13  # 1 s at 50 Hz = 50 frames -> ceil(50 / 4) adapter frames
    assert embeds.shape == (paired.student_ids.numel(), model.config.llm_hidden_size)
    text_ids = paired.student_ids[:start]
    assert torch.allclose(embeds[:start], model.embed_text(text_ids))


def test_frozen_student_and_teacher_share_one_copy_of_the_weights():
    model = tiny_salad("frozen")
    with model.teacher() as teacher:
        assert teacher is model.llm
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("adapter.") for n in trainable)
    table = model.parameter_table()
    assert table["llm"]["trainable"] == 0 and table["encoder"]["trainable"] == 0 and table["adapter"]["trainable"] > 0


def test_lora_teacher_is_the_original_llm_with_adapters_off():
    reference = tiny_llm()
    model = tiny_salad("lora")
    for name, p in model.llm.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)  # make the student differ from the original
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        original = reference(input_ids=ids).logits
        student = model.llm(input_ids=ids).logits
    with model.teacher() as teacher:
        teacher_logits = teacher(input_ids=ids).logits
    assert torch.allclose(teacher_logits, original, atol=1e-5)
    assert not torch.allclose(student, original, atol=1e-3)
    base_params = sum(p.numel() for n, p in model.llm.named_parameters() if "lora_" not in n)
    assert base_params == sum(p.numel() for p in reference.parameters())  # no second copy


def test_save_and_load_keep_only_trained_weights(tmp_path, monkeypatch):
    model = tiny_salad("frozen", seed=3)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "salad"
    assert config["llm_name"] == "tiny-random-llama" and config["encoder_name"] == "tiny-random-whisper"
    from safetensors.torch import load_file

    saved = load_file(tmp_path / WEIGHTS_NAME)
    assert saved and all(k.startswith("adapter.") for k in saved)
    # reloading rebuilds encoder and LLM from their names; here the names point at the same tiny models
    monkeypatch.setattr("salad_core.model.modeling.SpeechEncoder.load", lambda name, **_: tiny_encoder(3))
    monkeypatch.setattr("salad_core.model.modeling.load_llm", lambda name, *_, **__: (tiny_llm(3), smol_tokenizer()))
    loaded = SaladModel.from_pretrained(tmp_path)
    for key, value in model.adapter.state_dict().items():
        assert torch.equal(loaded.adapter.state_dict()[key], value)


def test_loading_a_folder_without_weights_says_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match="not a saved SaladModel"):
        SaladModel.from_pretrained(tmp_path)


def test_unknown_llm_name_fails_fast_with_the_fix():
    from salad_core.assets import AssetError
    from salad_core.model.llm import load_llm

    with pytest.raises(AssetError, match="huggingface-cli download no-such-org/no-such-model"):
        load_llm("no-such-org/no-such-model")
    with pytest.raises(AssetError, match="does not exist"):
        load_llm("./no/such/folder")


def test_presets_fix_the_parts_and_flags_override_only_what_differs():
    from salad_core.presets import model_config

    smol = model_config("smol")
    assert smol.llm_name == "HuggingFaceTB/SmolLM2-135M-Instruct" and smol.encoder_name == "openai/whisper-base"
    other = model_config("smol", llm_name="Qwen/Qwen2.5-3B", encoder_name=None)
    assert other.llm_name == "Qwen/Qwen2.5-3B" and other.encoder_name == "openai/whisper-base"
    with pytest.raises(KeyError, match="presets: mini, nano, smol"):
        model_config("huge")
    with pytest.raises(ValueError, match="divisible"):
        model_config("smol", adapter_width=100, adapter_heads=8)


def test_adapter_groups_by_length_without_changing_any_clip():
    from salad_core.model import modeling
    from salad_core.model.ctc import CTCHead

    model = tiny_salad()
    model.ctc = CTCHead(model.config.llm_hidden_size)
    torch.manual_seed(0)
    lengths = [40, 7, 300, 12, 88, 5, 160, 33, 64, 21, 9, 250]  # more clips than one group, in no order
    frames = [torch.randn(n, model.config.encoder_hidden_size) for n in lengths]
    embeds, logits = model.adapt_frames_with_ctc(frames)
    assert len(frames) > modeling.ADAPTER_GROUP
    for clip, e, l in zip(frames, embeds, logits):
        alone_e, alone_l = model.adapt_frames_with_ctc([clip])
        assert e.shape == alone_e[0].shape == (-(-clip.shape[0] // model.config.adapter_stack), e.shape[1])
        torch.testing.assert_close(e, alone_e[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(l, alone_l[0], atol=1e-4, rtol=1e-4)


def test_pad_rows_pads_with_zeros_and_passes_gradients_to_every_row():
    from salad_core.model.processing import pad_rows

    rows = [torch.randn(n, 3, requires_grad=True) for n in (2, 5, 1)]
    padded, mask = pad_rows(rows)
    assert padded.shape == (3, 5, 3) and mask.tolist() == [[1, 1, 0, 0, 0], [1] * 5, [1, 0, 0, 0, 0]]
    for b, row in enumerate(rows):
        assert torch.equal(padded[b, : len(row)], row) and not padded[b, len(row):].any()
    (padded * torch.arange(1.0, 6.0)[None, :, None]).sum().backward()
    assert torch.equal(rows[1].grad, torch.arange(1.0, 6.0)[:, None].expand(5, 3))


def test_train_mode_leaves_the_encoder_and_the_teacher_copy_in_eval_mode():
    model = tiny_salad("frozen")
    model.teacher_copy = tiny_llm(seed=1).requires_grad_(False)  # as a fully fine-tuned model holds one
    model.train()
    assert model.adapter.training and model.llm.training
    assert not model.encoder.training and not model.teacher_copy.training
    assert not any(m.training for m in model.teacher_copy.modules())
