"""Qwen2.5-Omni's thinker: a Whisper-like audio tower attending within 2 s chunks, pooled and projected into Qwen2.5's
decoder. Audio sits between <|audio_bos|> and <|audio_eos|>, one vector per 40 ms, at plain sequential positions."""

from __future__ import annotations

from pathlib import Path

import torch

from salad_core.speechllm.families.qwen2_audio import AUDIO_TOKENS, Qwen2Audio
from salad_core.speechllm.tiny import CHATML, CHATML_TOKENS, WIDTH, save_tiny, seeded, text_config, tiny_tokenizer

VISION_TOKENS = ["<|vision_bos|>", "<|IMAGE|>", "<|VIDEO|>"]  # unused by audio, but the config names them


class Qwen25OmniThinker(Qwen2Audio):
    """Hears as Qwen2-Audio does (the same features, markers and rate) through its own tower. Its decoder's 3-D
    (mrope) positions are, with no image or video, plain 0..T-1 on all three axes: the text model's defaults."""

    name = "qwen2.5-omni"
    # a full checkpoint ("qwen2_5_omni": thinker, talker, token2wav) loads as its thinker alone: the thinker class
    # picks its config out of thinker_config and its weights out of thinker.*, leaving the talker's unread
    model_types = ("qwen2_5_omni_thinker", "qwen2_5_omni")
    model_class = "Qwen2_5OmniThinkerForConditionalGeneration"
    natively_multimodal = True
    base_llms = {}

    def audio_embeds(self, model, features):
        device = next(model.model.audio_tower.parameters()).device
        return model.model.get_audio_features(features["input_features"].to(device),
                                              features["feature_attention_mask"].to(device)).last_hidden_state

    def native_logits(self, model, tokenizer, features, before, after):
        _, out_lengths = model.model.audio_tower._get_feat_extract_output_lengths(
            features["feature_attention_mask"].sum(-1))
        bos, eos = self.audio_wrap(tokenizer)
        ids = torch.tensor([before + bos + [model.config.audio_token_id] * int(out_lengths[0]) + eos + after])
        # with an attention mask, as the processor returns one, the thinker builds its own 3-D positions
        return model(input_ids=ids, attention_mask=torch.ones_like(ids), **features).logits[0]

    def tiny(self, out: Path, seed: int = 0) -> Path:
        from transformers import (
            Qwen2_5OmniThinkerConfig,
            Qwen2_5OmniThinkerForConditionalGeneration,
            WhisperFeatureExtractor,
        )

        tokenizer = tiny_tokenizer(CHATML_TOKENS + AUDIO_TOKENS + VISION_TOKENS, CHATML)
        ids = {token: tokenizer.convert_tokens_to_ids(token) for token in AUDIO_TOKENS + VISION_TOKENS}
        config = Qwen2_5OmniThinkerConfig(
            audio_config={"d_model": WIDTH, "encoder_layers": 2, "encoder_attention_heads": 2,
                          "encoder_ffn_dim": 2 * WIDTH, "num_mel_bins": 128, "output_dim": WIDTH,
                          "n_window": 50},  # 1 s chunks: a test clip spans several
            vision_config={"depth": 1, "hidden_size": WIDTH, "intermediate_size": 2 * WIDTH, "num_heads": 2,
                           "out_hidden_size": WIDTH, "fullatt_block_indexes": [0]},
            # the 7B's mrope_section [16, 24, 24], scaled to this head size (the sections sum to head_dim / 2)
            text_config=text_config(len(tokenizer), rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                                                                    "mrope_section": [2, 3, 3]}),
            audio_token_index=ids["<|AUDIO|>"], audio_start_token_id=ids["<|audio_bos|>"],
            audio_end_token_id=ids["<|audio_eos|>"], image_token_index=ids["<|IMAGE|>"],
            video_token_index=ids["<|VIDEO|>"],
            vision_start_token_id=ids["<|vision_bos|>"])  # not a declared field, yet the 3-D positions read it
        with seeded(seed):
            model = Qwen2_5OmniThinkerForConditionalGeneration(config)
        return save_tiny(out, model, tokenizer, WhisperFeatureExtractor(feature_size=128))
