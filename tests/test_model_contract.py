"""SaladModel keeps the PreTrainedModel contract: an __init__ from built parts that reads nothing and changes nothing
it is given, build/from_pretrained that load by name honouring dtype and device_map, and a forward with logits and
a loss."""

import copy
import inspect

import numpy as np
import pytest
import torch
from transformers import AutoModel

from salad_core.model.config import SaladConfig
from salad_core.model.ctc import CTCHead
from salad_core.model.modeling import SaladModel
from salad_core.model.placement import checked_device_map, checked_dtype
from salad_core.model.processing import IGNORE_INDEX, Segment, marked_ids
from tests.tiny_models import smol_tokenizer, tiny_encoder, tiny_llm, tiny_salad

TINY = {"adapter_layers": 1, "adapter_width": 32, "adapter_heads": 2, "lora_r": 4}


def tone(seconds: float, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def refuse_disk(monkeypatch) -> None:
    def refuse(*_, **__):
        raise AssertionError("read from disk")

    monkeypatch.setattr("salad_core.model.modeling.SpeechEncoder.load", refuse)
    monkeypatch.setattr("salad_core.model.modeling.load_llm", refuse)
    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", refuse)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    """A tiny LLM (with the SmolLM2 tokenizer) and a tiny Whisper encoder saved as transformers folders."""
    root = tmp_path_factory.mktemp("parts")
    tiny_llm(5).save_pretrained(root / "llm")
    smol_tokenizer().save_pretrained(root / "llm")
    tiny_encoder(5).encoder.save_pretrained(root / "encoder")
    return SaladConfig(llm_name=str(root / "llm"), encoder_name=str(root / "encoder"), **TINY)


# -- __init__ ----------------------------------------------------------------------------------------------------


def test_init_reads_nothing_from_disk_and_leaves_its_config_unchanged(monkeypatch):
    parts = tiny_encoder(), tiny_llm(), smol_tokenizer()
    refuse_disk(monkeypatch)
    config = SaladConfig(llm_name="tiny-random-llama", encoder_name="tiny-random-whisper", ctc_compress=True, **TINY)
    before = copy.deepcopy(vars(config))
    model = SaladModel(config, *parts)
    assert vars(config) == before and config.encoder_hidden_size is None and config.llm_hidden_size is None
    assert model.config is not config
    assert (model.config.encoder_hidden_size, model.config.llm_hidden_size) == (32, 64)
    assert model.adapter.project_out.out_features == 64 and model.ctc is not None


def test_widths_the_config_names_must_be_those_of_the_parts():
    config = SaladConfig(llm_name="t", encoder_name="t", encoder_hidden_size=512, **TINY)
    with pytest.raises(ValueError, match="encoder_hidden_size=512 but the parts given are 32 wide"):
        SaladModel(config, tiny_encoder(), tiny_llm(), smol_tokenizer())
    fitted = SaladConfig(llm_name="t", encoder_name="t", encoder_hidden_size=32, llm_hidden_size=64, **TINY)
    assert SaladModel(fitted, tiny_encoder(), tiny_llm(), smol_tokenizer()).config.llm_hidden_size == 64


def test_new_parts_take_the_device_and_dtype_of_the_llms_embeddings():
    config = SaladConfig(llm_name="t", encoder_name="t", ctc_compress=True, **TINY)
    model = SaladModel(config, tiny_encoder(), tiny_llm().to(torch.bfloat16), smol_tokenizer())
    assert {p.dtype for p in [*model.adapter.parameters(), *model.ctc.parameters()]} == {torch.bfloat16}


def test_a_fully_fine_tuned_model_needs_a_teacher_copy_of_its_own():
    llm = tiny_llm()
    full = SaladConfig(llm_name="t", encoder_name="t", llm_mode="full", **TINY)
    for teacher in (None, llm):
        with pytest.raises(ValueError, match="teacher must be a second copy"):
            SaladModel(full, tiny_encoder(), llm, smol_tokenizer(), teacher_copy=teacher)
    frozen = SaladConfig(llm_name="t", encoder_name="t", **TINY)
    with pytest.raises(ValueError, match="pass teacher_copy only with llm_mode 'full'"):
        SaladModel(frozen, tiny_encoder(), llm, smol_tokenizer(), teacher_copy=tiny_llm())
    model = tiny_salad("full")
    with model.teacher() as teacher:
        assert teacher is model.teacher_copy and teacher is not model.llm
    assert not any(p.requires_grad for p in model.teacher_copy.parameters())
    assert all(p.requires_grad for p in model.llm.parameters())


# -- build and from_pretrained ----------------------------------------------------------------------------------


def test_build_loads_the_named_parts_and_pins_a_world_llm_in_its_own_config(monkeypatch):
    import salad_core.world  # noqa: F401  (registers the world LLM names)
    from salad_core.world.lm_recipes import LM_FOLDER

    calls = []
    monkeypatch.setattr("salad_core.model.modeling.SpeechEncoder.load", lambda name, **kw: tiny_encoder())
    def load_llm(name, dtype, device_map):
        calls.append((name, device_map))
        return tiny_llm(), smol_tokenizer()

    monkeypatch.setattr("salad_core.model.modeling.load_llm", load_llm)
    config = SaladConfig(llm_name="world:nano", encoder_name="tiny-random-whisper", llm_mode="full", **TINY)
    model = SaladModel.build(config)
    assert config.llm_name == "world:nano" and config.llm_hidden_size is None
    assert model.config.llm_name == f"world:nano/{LM_FOLDER}"
    assert calls == [(model.config.llm_name, None)] * 2  # the student's LLM and the teacher's copy
    assert model.teacher_copy is not None and model.teacher_copy is not model.llm


def test_auto_device_map_goes_to_the_llm_and_the_other_parts_follow_its_embeddings(monkeypatch):
    asked = []
    monkeypatch.setattr("salad_core.model.modeling.SpeechEncoder.load", lambda name, **kw: tiny_encoder())
    def load_llm(name, dtype, device_map):
        asked.append(device_map)
        return tiny_llm().to("meta"), smol_tokenizer()  # where "auto" might put it: anywhere but the CPU

    monkeypatch.setattr("salad_core.model.modeling.load_llm", load_llm)
    model = SaladModel.build(SaladConfig(llm_name="t", encoder_name="t", ctc_compress=True, **TINY), device_map="auto")
    assert asked == ["auto"]
    assert model.encoder.device.type == "meta" and {p.device.type for p in model.encoder.parameters()} == {"meta"}
    assert {p.device.type for p in [*model.adapter.parameters(), *model.ctc.parameters()]} == {"meta"}


def test_from_pretrained_honours_dtype_and_device_map(tiny_folders, tmp_path):
    torch.manual_seed(0)
    trained = SaladModel.build(tiny_folders).eval()
    assert trained.config.llm_hidden_size == 64 and tiny_folders.llm_hidden_size is None
    trained.save_pretrained(tmp_path)
    for device_map in (None, "cpu", torch.device("cpu"), "auto"):
        loaded = SaladModel.from_pretrained(tmp_path, dtype=torch.bfloat16, device_map=device_map)
        parts = [loaded.llm, loaded.adapter, loaded.encoder.encoder]
        assert {p.dtype for part in parts for p in part.parameters()} == {torch.bfloat16}
        assert {p.device.type for p in loaded.parameters()} == {"cpu"}
        assert loaded.encoder.log_mel.mel_filters.dtype == torch.float32  # the log-mel front end stays float32
        for key, value in trained.adapter.state_dict().items():
            assert torch.equal(loaded.adapter.state_dict()[key], value.to(torch.bfloat16))
    reference = SaladModel.from_pretrained(tmp_path)
    assert {p.dtype for p in reference.parameters()} == {torch.float32}
    frames = reference.encoder.encode([tone(0.6)])
    ids = marked_ids(reference.tokenizer, [Segment("The capital of"), Segment(" France", tone(0.6)), Segment(" is")])
    with torch.no_grad():
        low = loaded(ids[None], frames).logits
        full = reference(ids[None], frames).logits
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), full, atol=0.05, rtol=0.05)


def test_auto_model_loads_a_saved_folder_with_its_dtype(tiny_folders, tmp_path):
    SaladModel.build(tiny_folders).save_pretrained(tmp_path)
    model = AutoModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert isinstance(model, SaladModel) and next(model.adapter.parameters()).dtype == torch.bfloat16
    with pytest.raises(TypeError, match=r"got also \['torch_dtype'\]"):
        SaladModel.from_pretrained(tmp_path, torch_dtype=torch.float16)
    with pytest.raises(TypeError, match="not a SaladConfig"):
        SaladModel.from_pretrained(tmp_path, config=tiny_llm().config)


def test_dtype_and_device_map_outside_what_is_supported_are_named():
    assert checked_dtype(None) == torch.float32 and checked_dtype("bfloat16") == torch.bfloat16
    for dtype in ("auto", "int8", torch.int64, 16):
        with pytest.raises(ValueError, match=f"dtype={dtype!r} is not a floating-point torch dtype"):
            checked_dtype(dtype)
    assert checked_device_map("cpu") == torch.device("cpu") and checked_device_map("cuda:1") == torch.device("cuda", 1)
    assert checked_device_map(1) == torch.device("cuda", 1) and checked_device_map("balanced") == "balanced"
    for device_map in ({"": 0}, "gpu7", True, 1.5):
        with pytest.raises(ValueError, match=f"device_map={device_map!r} is not supported"):
            checked_device_map(device_map)


# -- forward ----------------------------------------------------------------------------------------------------


def test_expanding_markers_makes_room_for_each_span_in_order():
    from salad_core.model.processing import expand_markers

    source, spans = expand_markers(torch.tensor([5, -1, 7, -1]), [3, 2])
    assert source.tolist() == [0, 1, 1, 1, 2, 3, 3] and spans == [(1, 3), (5, 2)]
    with pytest.raises(ValueError, match="2 speech markers .* but 1 spans"):
        expand_markers(torch.tensor([5, -1, 7, -1]), [3])


def document(question: str, seconds: float) -> list[Segment]:
    return [Segment("Question:"), Segment(question, tone(seconds)), Segment("\nAnswer: four, as always.")]


@pytest.mark.parametrize("ctc", [False, True], ids=["adapter-frames", "ctc-compressed"])
def test_forward_logits_are_the_llms_on_the_embeddings_pair_builds(ctc):
    model = tiny_salad()
    if ctc:
        model.ctc = CTCHead(model.config.llm_hidden_size)
    segments = document(" What is two plus two?", 1.0)
    frames = model.encoder.encode([segments[1].audio])
    with torch.no_grad():
        out = model(marked_ids(model.tokenizer, segments)[None], speech_frames=frames)
        paired, embeds = model.pair(segments, model.adapt_frames(frames))
        expected = model.llm(inputs_embeds=embeds[None]).logits
    assert out.logits.shape == (1, paired.student_ids.numel(), len(model.tokenizer))
    assert out.attention_mask.tolist() == [[1] * paired.student_ids.numel()]
    torch.testing.assert_close(out.logits, expected)


def test_forward_loss_is_the_cross_entropy_of_each_text_token_from_the_position_before():
    model = tiny_salad(seed=2)
    segments = document(" What is two plus two?", 1.0)
    frames = model.encoder.encode([segments[1].audio])
    ids = marked_ids(model.tokenizer, segments)[None]
    with torch.no_grad():
        out = model(ids, speech_frames=frames, labels=ids)
    paired, _ = model.pair(segments, model.adapt_frames(frames))
    log_probs = out.logits[0].log_softmax(-1)  # (T', V)
    by_hand = -log_probs[paired.student_pred, paired.targets].mean()  # the positions whose next token is text
    assert len(paired.targets) > 5
    torch.testing.assert_close(out.loss, by_hand)
    prompt = len(model.tokenizer("Question:", add_special_tokens=False).input_ids)
    masked = ids.masked_fill(torch.arange(ids.shape[1]) < prompt, IGNORE_INDEX)  # no loss on the prompt's tokens
    with torch.no_grad():
        assert model(ids, speech_frames=frames, labels=masked).loss.item() == pytest.approx(
            -log_probs[paired.student_pred[prompt - 1:], paired.targets[prompt - 1:]].mean().item(), rel=1e-5)


def test_a_padded_batch_gives_each_document_the_logits_it_gets_alone():
    model = tiny_salad(seed=1)
    docs = [document(" What is two plus two?", 1.0), [Segment("Hi"), Segment(" there", tone(0.4, 330.0))]]
    frames = [model.encoder.encode([d[1].audio])[0] for d in docs]
    rows = [marked_ids(model.tokenizer, d) for d in docs]
    width = max(len(r) for r in rows)
    pad = model.tokenizer.pad_token_id
    ids = torch.stack([torch.nn.functional.pad(r, (0, width - len(r)), value=pad) for r in rows])  # right-padded
    mask = (torch.arange(width)[None, :] < torch.tensor([len(r) for r in rows])[:, None]).long()
    with torch.no_grad():
        batch = model(ids, speech_frames=frames, attention_mask=mask)
        for b, (row, clip) in enumerate(zip(rows, frames)):
            alone = model(row[None], speech_frames=[clip]).logits[0]
            assert batch.attention_mask[b].sum() == len(alone) and not batch.attention_mask[b, len(alone):].any()
            torch.testing.assert_close(batch.logits[b, : len(alone)], alone, atol=1e-5, rtol=1e-4)
    assert batch.attention_mask[1].sum() < batch.attention_mask[0].sum()


def test_forward_takes_its_main_input_first_and_names_markers_without_speech():
    model = tiny_salad()
    assert next(iter(inspect.signature(model.forward).parameters)) == model.main_input_name == "input_ids"
    ids = marked_ids(model.tokenizer, document(" What?", 0.5))[None]
    with pytest.raises(ValueError, match="input_ids hold 1 speech markers .* but speech_frames 0 spans"):
        model(ids)
    with pytest.raises(ValueError, match="input_ids hold 1 speech markers .* but speech_frames 2 spans"):
        model(ids, speech_frames=[torch.zeros(10, 32)] * 2)
