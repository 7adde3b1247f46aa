"""Tiny random-weight models for fast CPU tests of the model, scoring and divergence code paths.

The tokenizer is the real SmolLM2 one (from the offline package, converted once into the cache), so text spans
tokenize as in the real `smol` preset; the LLM and the Whisper encoder are a few layers of random weights.
"""

from __future__ import annotations

import functools

import torch
from transformers import LlamaConfig, LlamaForCausalLM, WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from salad_core.model.config import SaladConfig
from salad_core.model.encoder import SpeechEncoder


@functools.lru_cache(maxsize=1)
def smol_tokenizer():
    from salad_core.model.llm import load_llm

    return load_llm("smollm2")[1]


def tiny_llm(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(smol_tokenizer()), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


def tiny_encoder(seed: int = 0) -> SpeechEncoder:
    torch.manual_seed(seed)
    config = WhisperConfig(d_model=32, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=80,
                           max_source_positions=1500)
    return SpeechEncoder(WhisperEncoder(config), name="tiny-random-whisper")


def tiny_salad(llm_mode: str = "frozen", seed: int = 0):
    from salad_core.model.modeling import SaladModel

    config = SaladConfig(llm_name="tiny-random-llama", encoder_name="tiny-random-whisper", adapter_layers=1,
                         adapter_width=32, adapter_heads=2, llm_mode=llm_mode, lora_r=4)
    teacher = tiny_llm(seed) if llm_mode == "full" else None  # the same weights again, as build loads them
    torch.manual_seed(seed)
    return SaladModel(config, encoder=tiny_encoder(seed), llm=tiny_llm(seed), tokenizer=smol_tokenizer(),
                      teacher_copy=teacher)
