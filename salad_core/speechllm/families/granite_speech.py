"""Granite Speech: a conformer CTC encoder over stacked log-mel pairs (one frame per 20 ms), a Q-Former projector
that turns each 300 ms window of 15 frames into 3 queries, Granite's decoder. One <|audio|> per 100 ms, whole
windows only (the last one zero-padded), nothing around them; a LoRA adapter on the decoder is on only when audio is."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from transformers import AutoFeatureExtractor, BatchFeature, GraniteSpeechConfig, GraniteSpeechFeatureExtractor
from transformers.audio_utils import mel_filter_bank
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from salad_core.speechllm.family import SpeechLLMFamily
from salad_core.speechllm.tiny import WIDTH, save_tiny, seeded, text_config, tiny_tokenizer

ROLE_TOKENS = ["<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>"]
GRANITE_CHAT = ("{% for m in messages %}<|start_of_role|>{{ m['role'] }}<|end_of_role|>{{ m['content'] }}"
                "<|end_of_text|>\n{% endfor %}{% if add_generation_prompt %}<|start_of_role|>assistant<|end_of_role|>"
                "{% endif %}")
# granite-3.3-2b's muP-style multipliers, at the tiny width (attention scaled by 1/head_dim, not its square root).
GRANITE = {"embedding_multiplier": 12.0, "residual_multiplier": 0.22, "logits_scaling": 8.0,
           "attention_multiplier": 1 / (WIDTH // 2)}


class GraniteSpeechMelFeatures(GraniteSpeechFeatureExtractor):
    """GraniteSpeechFeatureExtractor without torchaudio, which it needs to exist at all: the same log-mels from
    torch.stft and transformers' mel_filter_bank, which equals torchaudio's MelSpectrogram defaults (HTK scale, no
    norm, periodic Hann window, centered reflect-padded frames, power 2) to float32 rounding."""

    def __init__(self, sampling_rate: int = 16000, n_fft: int = 512, win_length: int = 400, hop_length: int = 160,
                 n_mels: int = 80, projector_window_size: int = 15, projector_downsample_rate: int = 5,
                 padding_value: float = 0.0, **kwargs):
        # as the parent does: a saved `melspec_kwargs` is overwritten by these arguments
        feature_size = n_mels if kwargs.get("feature_size") is None else kwargs.pop("feature_size")
        SequenceFeatureExtractor.__init__(self, feature_size=feature_size, sampling_rate=sampling_rate,
                                          padding_value=padding_value, **kwargs)
        self.melspec_kwargs = {"sample_rate": sampling_rate, "n_fft": n_fft, "win_length": win_length,
                               "hop_length": hop_length, "n_mels": n_mels}
        self.mel_filters = mel_filter_bank(n_fft // 2 + 1, n_mels, 0.0, float(sampling_rate // 2), sampling_rate,
                                           mel_scale="htk").astype(np.float32)  # (freqs, mels); not saved
        self.projector_window_size = projector_window_size
        self.projector_downsample_rate = projector_downsample_rate

    def __call__(self, audios, device: str | None = "cpu") -> BatchFeature:
        batched, lengths = self._get_audios_and_audio_lengths(audios)
        sizes = self._get_num_audio_features(lengths)
        return BatchFeature({"input_features": self._extract_mel_spectrograms(batched), "audio_embed_sizes": sizes,
                             "input_features_mask": torch.arange(max(sizes))[None] < torch.tensor(sizes)[:, None]})

    def _extract_mel_spectrograms(self, audio: torch.Tensor, device: str | None = "cpu") -> torch.Tensor:
        kw = self.melspec_kwargs
        spec = torch.stft(audio.float(), kw["n_fft"], kw["hop_length"], kw["win_length"],
                          torch.hann_window(kw["win_length"]), center=True, pad_mode="reflect",
                          return_complex=True).abs().pow(2)
        logmel = (spec.transpose(-1, -2) @ torch.from_numpy(self.mel_filters)).clamp(min=1e-10).log10()
        logmel = torch.maximum(logmel, logmel.amax(dim=(-2, -1), keepdim=True) - 8.0) / 4 + 1
        logmel = logmel[:, : logmel.shape[1] // 2 * 2]  # an odd last frame is dropped, then pairs are stacked
        return logmel.reshape(audio.shape[0], -1, 2 * logmel.shape[-1])


class ScaledHead(torch.nn.Module):
    """The LM head divided by `logits_scaling`, as Granite's LLM computes its logits (GraniteForCausalLM). The
    speech model's forward in transformers 5 leaves the division out, which its 4.x class (the LLM with its head
    inside) applied; without it the speech model would answer at another temperature than its text LLM, and F would
    measure that."""

    def __init__(self, head: torch.nn.Module, scaling: float):
        super().__init__()
        self.head, self.scaling = head, scaling

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.head(states) / self.scaling


# So AutoFeatureExtractor finds it by the name the tiny models save (and for configs that name none).
AutoFeatureExtractor.register(GraniteSpeechConfig, GraniteSpeechMelFeatures, exist_ok=True)


class GraniteSpeech(SpeechLLMFamily):
    name = "granite-speech"
    model_types = ("granite_speech",)
    model_class = "GraniteSpeechForConditionalGeneration"
    base_llms = {"ibm-granite/granite-speech-3.3-8b": "ibm-granite/granite-3.3-8b-instruct",
                 "ibm-granite/granite-speech-3.3-2b": "ibm-granite/granite-3.3-2b-instruct"}

    def load_model(self, where, dtype, **hub):
        model = super().load_model(where, dtype, **hub)
        if getattr(model.config, "has_lora_adapter", False) and not getattr(model, "_hf_peft_config_loaded", False):
            raise RuntimeError(f"{where}: this Granite Speech checkpoint hears through a LoRA adapter that did not "
                               "load (transformers loads it with peft >= 0.22 only), so its speech lane would be "
                               "another model. Fix: pip install 'peft>=0.22' into this environment.")
        return model

    def load_feature_extractor(self, where: Path | str, **hub) -> GraniteSpeechFeatureExtractor:
        """A released checkpoint names GraniteSpeechFeatureExtractor, which AutoFeatureExtractor cannot build without
        torchaudio: the same parameters in our torchaudio-free twin."""
        return GraniteSpeechMelFeatures.from_pretrained(where, **hub)

    def decoder(self, model):
        return model.model.language_model, ScaledHead(model.lm_head, model.config.text_config.logits_scaling)

    def features(self, feature_extractor, audio: np.ndarray) -> dict[str, torch.Tensor]:
        out = feature_extractor(torch.from_numpy(np.asarray(audio, dtype=np.float32)))
        return {"input_features": out["input_features"], "input_features_mask": out["input_features_mask"]}

    def audio_embeds(self, model, features):
        weight = next(model.model.projector.parameters())
        mel = features["input_features"].to(weight.device, weight.dtype)
        embeds = model.model.get_audio_features(mel).pooler_output[0]
        return embeds[features["input_features_mask"][0].to(embeds.device)]

    @contextlib.contextmanager
    def reading(self, model, heard: bool):
        if not getattr(model, "_hf_peft_config_loaded", False):
            yield
            return
        from peft.tuners.tuners_utils import BaseTunerLayer

        was_on = not any(m.disable_adapters for m in model.modules() if isinstance(m, BaseTunerLayer))
        (model.enable_adapters if heard else model.disable_adapters)()
        try:
            yield
        finally:
            (model.enable_adapters if was_on else model.disable_adapters)()

    def native_logits(self, model, tokenizer, features, before, after):
        ids = before + [model.config.audio_token_id] * int(features["input_features_mask"][0].sum()) + after
        return model(input_ids=torch.tensor([ids]), **features).logits[0] / model.config.text_config.logits_scaling

    def tiny(self, out: Path, seed: int = 0) -> Path:
        from transformers import GraniteConfig, GraniteForCausalLM, GraniteSpeechForConditionalGeneration

        tokenizer = tiny_tokenizer(ROLE_TOKENS + ["<|audio|>"], GRANITE_CHAT, eos="<|end_of_text|>")
        vocab = len(tokenizer)
        extractor = GraniteSpeechMelFeatures()
        config = GraniteSpeechConfig(
            encoder_config={"input_dim": 2 * extractor.feature_size, "num_layers": 2, "hidden_dim": WIDTH,
                            "num_heads": 2, "feedforward_mult": 2, "output_dim": 8},
            projector_config={"model_type": "blip_2_qformer", "hidden_size": WIDTH, "num_hidden_layers": 1,
                              "num_attention_heads": 2, "intermediate_size": 2 * WIDTH, "encoder_hidden_size": WIDTH,
                              "cross_attention_frequency": 1, "initializer_range": 0.2},
            text_config={"model_type": "granite", **text_config(vocab, **GRANITE)},
            audio_token_index=tokenizer.convert_tokens_to_ids("<|audio|>"), has_lora_adapter=False,
            window_size=extractor.projector_window_size, downsample_rate=extractor.projector_downsample_rate)
        with seeded(seed):
            model = GraniteSpeechForConditionalGeneration(config)
            base = GraniteForCausalLM(GraniteConfig(**text_config(vocab, **GRANITE)))
        return save_tiny(out, model, tokenizer, extractor, base)

