"""Voxtral: a Whisper-large-like audio tower, a two-layer projector over 4 stacked tower frames, a Mistral decoder.
Audio follows [BEGIN_AUDIO] as one [AUDIO] vector per 80 ms of the clip padded to whole 30 s chunks: 375 per chunk."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from salad_core.speechllm.family import SpeechLLMFamily
from salad_core.speechllm.tiny import WIDTH, save_tiny, seeded, text_config, tiny_tokenizer

AUDIO_TOKENS = ["[BEGIN_AUDIO]", "[AUDIO]"]
MISTRAL_TOKENS = ["<s>", "</s>", "[INST]", "[/INST]"]
MISTRAL_CHAT = ("<s>{% for m in messages %}{% if m['role'] == 'assistant' %}{{ m['content'] }}</s>"
                "{% else %}[INST]{{ m['content'] }}[/INST]{% endif %}{% endfor %}")
FRAMES_PER_TOKEN = 8  # mistral_common's audio_length_per_tok: mel frames per [AUDIO] token


class Voxtral(SpeechLLMFamily):
    name = "voxtral"
    model_types = ("voxtral",)
    model_class = "VoxtralForConditionalGeneration"
    base_llms = {"mistralai/Voxtral-Small-24B-2507": "mistralai/Mistral-Small-24B-Instruct-2501"}

    def audio_wrap(self, tokenizer):
        return [tokenizer.convert_tokens_to_ids("[BEGIN_AUDIO]")], []

    def features(self, feature_extractor, audio: np.ndarray) -> dict[str, torch.Tensor]:
        # As VoxtralProcessor: silence to whole 30 s chunks, one spectrogram cut into (chunks, mel, 3000).
        out = feature_extractor(audio, sampling_rate=feature_extractor.sampling_rate, padding=True, truncation=False,
                                pad_to_multiple_of=feature_extractor.n_samples, return_tensors="pt")
        mel = out.input_features.reshape(feature_extractor.feature_size, -1, feature_extractor.nb_max_frames)
        return {"input_features": mel.transpose(0, 1)}

    def audio_embeds(self, model, features):
        return model.model.get_audio_features(features["input_features"], return_dict=True).pooler_output

    def native_logits(self, model, tokenizer, features, before, after):
        chunks, _, frames = features["input_features"].shape
        bos, eos = self.audio_wrap(tokenizer)
        ids = before + bos + [model.config.audio_token_id] * math.ceil(chunks * frames / FRAMES_PER_TOKEN) + eos + after
        return model(input_ids=torch.tensor([ids]), **features).logits[0]

    def tiny(self, out: Path, seed: int = 0) -> Path:
        from transformers import (
            MistralConfig,
            MistralForCausalLM,
            VoxtralConfig,
            VoxtralForConditionalGeneration,
            WhisperFeatureExtractor,
        )

        tokenizer = tiny_tokenizer(MISTRAL_TOKENS + AUDIO_TOKENS, MISTRAL_CHAT, eos="</s>")
        vocab = len(tokenizer)
        decoder = text_config(vocab, head_dim=WIDTH // 2)  # else VoxtralConfig's default head_dim of 128
        config = VoxtralConfig(
            # the projector stacks intermediate_size / hidden_size tower frames: 4, as in the real 1280 -> 5120
            audio_config={"hidden_size": WIDTH, "num_hidden_layers": 2, "num_attention_heads": 2,
                          "intermediate_size": 4 * WIDTH, "num_mel_bins": 128, "max_source_positions": 1500},
            text_config={"model_type": "llama", **decoder},
            audio_token_id=tokenizer.convert_tokens_to_ids("[AUDIO]"))
        with seeded(seed):
            model = VoxtralForConditionalGeneration(config)
            base = MistralForCausalLM(MistralConfig(**decoder))
        return save_tiny(out, model, tokenizer, WhisperFeatureExtractor(feature_size=128), base)
