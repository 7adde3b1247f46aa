"""Every supported speech LLM family, as a tiny random-weight model built here: our way of hearing (the family's
audio vectors spliced into the decoder's input embeddings) gives the model's own logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from salad_core.speechllm.families import FAMILY_CLASSES, family_for, get_family

FAMILIES = list(FAMILY_CLASSES)


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request, tmp_path_factory):
    from transformers import AutoFeatureExtractor, AutoTokenizer

    family = get_family(request.param)
    folder = family.tiny(tmp_path_factory.mktemp(request.param.replace(".", "_")), seed=0)
    model = family.load_model(folder, torch.float32)
    return family, model, AutoTokenizer.from_pretrained(folder), AutoFeatureExtractor.from_pretrained(folder), folder


def _clip(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@torch.no_grad()
def test_spliced_audio_gives_the_models_own_logits(tiny):
    family, model, tokenizer, extractor, _ = tiny
    features = family.features(extractor, _clip(1.7))
    embeds = family.audio_embeds(model, features)
    before = tokenizer("Question:", add_special_tokens=False).input_ids
    after = tokenizer("\nAnswer: Paris", add_special_tokens=False).input_ids
    bos, eos = family.audio_wrap(tokenizer)
    body, head = family.decoder(model)
    table = body.get_input_embeddings()
    context = torch.cat([table(torch.tensor(before + bos)), embeds.to(table.weight.dtype), table(torch.tensor(eos + after))])
    with family.reading(model, heard=True):
        ours = head(body(inputs_embeds=context[None]).last_hidden_state)[0]
        native = family.native_logits(model, tokenizer, features, before, after)
    assert ours.shape == native.shape
    torch.testing.assert_close(ours, native, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_longer_audio_gives_more_vectors_and_different_audio_different_ones(tiny):
    family, model, _, extractor, _ = tiny
    short = family.audio_embeds(model, family.features(extractor, _clip(1.0)))
    long = family.audio_embeds(model, family.features(extractor, _clip(31.0)))  # Voxtral: 375 vectors per 30 s
    other = family.audio_embeds(model, family.features(extractor, _clip(1.0, seed=1) * 0.2))
    assert long.shape[0] > short.shape[0] > 0
    assert short.shape[1] == long.shape[1] == model.config.get_text_config().hidden_size
    assert not torch.allclose(short, other)


def test_the_config_names_its_family(tiny):
    family, model, *_ = tiny
    assert family_for(model.config.model_type).name == family.name


def test_an_unsupported_architecture_fails_listing_the_families():
    with pytest.raises(ValueError, match="qwen2-audio.*voxtral.*granite-speech.*qwen2.5-omni"):
        family_for("llama")
