"""Qwen2-Audio: a Whisper-large-like audio tower, a linear projector, Qwen's 7B decoder. Audio sits between
<|audio_bos|> and <|audio_eos|>, one vector per 40 ms (the tower's stride 2 and a pooling of 2 over 10 ms frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from salad_core.speechllm.family import SpeechLLMFamily
from salad_core.speechllm.tiny import CHATML, CHATML_TOKENS, WIDTH, save_tiny, seeded, text_config, tiny_tokenizer

AUDIO_TOKENS = ["<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]


class Qwen2Audio(SpeechLLMFamily):
    name = "qwen2-audio"
    model_types = ("qwen2_audio",)
    model_class = "Qwen2AudioForConditionalGeneration"
    base_llms = {"Qwen/Qwen2-Audio-7B-Instruct": "Qwen/Qwen-7B-Chat", "Qwen/Qwen2-Audio-7B": "Qwen/Qwen-7B"}

    def audio_wrap(self, tokenizer):
        return [tokenizer.convert_tokens_to_ids("<|audio_bos|>")], [tokenizer.convert_tokens_to_ids("<|audio_eos|>")]

    def features(self, feature_extractor, audio: np.ndarray) -> dict[str, torch.Tensor]:
        out = feature_extractor(audio, sampling_rate=feature_extractor.sampling_rate, return_attention_mask=True,
                                padding="max_length", return_tensors="pt")
        return {"input_features": out.input_features, "feature_attention_mask": out.attention_mask}

    def audio_embeds(self, model, features):
        from transformers.masking_utils import create_bidirectional_mask

        tower = model.model.audio_tower
        weight = next(tower.parameters())
        mel = features["input_features"].to(weight.device, weight.dtype)
        conv_lengths, out_lengths = tower._get_feat_extract_output_lengths(features["feature_attention_mask"].sum(-1))
        positions = (mel.shape[-1] - 2) // 2 + 1  # after the tower's strided convolution
        valid = (torch.arange(positions)[None] < conv_lengths[:, None]).long().to(weight.device)
        mask = create_bidirectional_mask(config=tower.config, inputs_embeds=mel.new_zeros(1, positions, 1),
                                         attention_mask=valid)
        states = tower(mel, attention_mask=mask).last_hidden_state
        return model.model.multi_modal_projector(states)[0, : int(out_lengths[0])]

    def native_logits(self, model, tokenizer, features, before, after):
        _, out_lengths = model.model.audio_tower._get_feat_extract_output_lengths(
            features["feature_attention_mask"].sum(-1))
        bos, eos = self.audio_wrap(tokenizer)
        ids = before + bos + [model.config.audio_token_id] * int(out_lengths[0]) + eos + after
        return model(input_ids=torch.tensor([ids]), **features).logits[0]

    def tiny(self, out: Path, seed: int = 0) -> Path:
        from transformers import (
            Qwen2AudioConfig,
            Qwen2AudioForConditionalGeneration,
            Qwen2Config,
            Qwen2ForCausalLM,
            WhisperFeatureExtractor,
        )

        tokenizer = tiny_tokenizer(CHATML_TOKENS + AUDIO_TOKENS, CHATML)
        vocab = len(tokenizer)
        config = Qwen2AudioConfig(
            audio_config={"d_model": WIDTH, "encoder_layers": 2, "encoder_attention_heads": 2,
                          "encoder_ffn_dim": 2 * WIDTH, "num_mel_bins": 128, "max_source_positions": 1500},
            text_config={"model_type": "qwen2", **text_config(vocab)},
            audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
        with seeded(seed):
            model = Qwen2AudioForConditionalGeneration(config)
            base = Qwen2ForCausalLM(Qwen2Config(**text_config(vocab)))
        return save_tiny(out, model, tokenizer, WhisperFeatureExtractor(feature_size=128), base)
