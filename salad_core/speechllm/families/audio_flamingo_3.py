"""Audio Flamingo 3: a Whisper-large-like audio tower over 30 s windows, an average pooling of 2, a two-layer MLP
projector, Qwen2.5's 7B decoder. The clip's <sound> run stands bare (no marker tokens around it), one vector per 40 ms,
the windows' vectors back to back; the processor hears at most the first 10 minutes (20 windows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from salad_core.speechllm.family import SpeechLLMFamily
from salad_core.speechllm.tiny import CHATML, CHATML_TOKENS, WIDTH, save_tiny, seeded, text_config, tiny_tokenizer

AUDIO_TOKENS = ["<sound>"]
MAX_AUDIO_SECONDS = 600  # the processor's max_audio_len: longer clips are cut to their first windows


class AudioFlamingo3(SpeechLLMFamily):
    name = "audio-flamingo-3"
    model_types = ("audioflamingo3",)
    model_class = "AudioFlamingo3ForConditionalGeneration"
    base_llms = {"nvidia/audio-flamingo-3-hf": "Qwen/Qwen2.5-7B-Instruct"}
    audio_between_text = False  # its processor pairs texts and audios one to one

    def features(self, feature_extractor, audio: np.ndarray) -> dict[str, torch.Tensor]:
        # as the processor: one row per 30 s window (the last one padded), each a full Whisper input
        window = int(feature_extractor.sampling_rate * feature_extractor.chunk_length)
        count = min(max(1, -(-len(audio) // window)), int(MAX_AUDIO_SECONDS // feature_extractor.chunk_length))
        windows = [audio[i * window: min((i + 1) * window, len(audio))] for i in range(count)]
        out = feature_extractor(windows, sampling_rate=feature_extractor.sampling_rate, return_attention_mask=True,
                                return_tensors="pt")
        return {"input_features": out.input_features, "input_features_mask": out.attention_mask}

    def audio_embeds(self, model, features):
        weight = next(model.model.audio_tower.parameters())
        return model.model.get_audio_features(features["input_features"].to(weight.device, weight.dtype),
                                              features["input_features_mask"].to(weight.device)).pooler_output

    def native_logits(self, model, tokenizer, features, before, after):
        # the processor counts the vectors from all windows' frames together; each full window's 3000 frames
        # give 750 vectors, so this is also the sum of the windows' own counts
        _, count = model.model.audio_tower._get_feat_extract_output_lengths(features["input_features_mask"].sum())
        ids = torch.tensor([before + [model.config.audio_token_id] * int(count) + after])
        return model(input_ids=ids, attention_mask=torch.ones_like(ids), **features).logits[0]

    def tiny(self, out: Path, seed: int = 0) -> Path:
        from transformers import (
            AudioFlamingo3Config,
            AudioFlamingo3ForConditionalGeneration,
            Qwen2Config,
            Qwen2ForCausalLM,
            WhisperFeatureExtractor,
        )

        tokenizer = tiny_tokenizer(CHATML_TOKENS + AUDIO_TOKENS, CHATML)
        vocab = len(tokenizer)
        config = AudioFlamingo3Config(
            audio_config={"model_type": "audioflamingo3_encoder", "d_model": WIDTH, "encoder_layers": 2,
                          "encoder_attention_heads": 2, "encoder_ffn_dim": 2 * WIDTH, "num_mel_bins": 128,
                          "max_source_positions": 1500},
            text_config={"model_type": "qwen2", **text_config(vocab)},
            audio_token_id=tokenizer.convert_tokens_to_ids("<sound>"))
        with seeded(seed):
            model = AudioFlamingo3ForConditionalGeneration(config)
            base = Qwen2ForCausalLM(Qwen2Config(**text_config(vocab)))
        extractor = WhisperFeatureExtractor(feature_size=128, return_attention_mask=True)
        return save_tiny(out, model, tokenizer, extractor, base)
