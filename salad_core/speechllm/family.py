"""The family interface: what salad needs to know about one kind of `transformers` speech LLM.

Every supported speech LLM is, seen from here, the same three pieces (the Ultravox view of SaladModel):

    features      the processor's feature extractor on one 16 kHz clip (a log-mel spectrogram and its masks)
    audio_embeds  the model's audio tower and projector on those features: (S, D) vectors in the LLM's input space,
                  between the family's own marker tokens (`audio_wrap`), as the model's processor would lay them out
    decoder       the causal text decoder and its LM head, fed input embeddings

With those, one scorer serves every family: the prompt is the reader's chat template around the same segments
SaladModel hears (eval/lanes.py), the audio's vectors sit where the family's placeholder tokens would, and the
options are scored as continuations of those embeddings. A family is one small subclass in
salad_core/speechllm/families/, registered by the `model_type`s of its configs.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn


class SpeechLLMFamily:
    name: ClassVar[str]  # as users write it: "qwen2-audio"
    model_types: ClassVar[tuple[str, ...]]  # the `config.model_type`s this family loads
    model_class: ClassVar[str]  # the transformers class, by name (imported when loaded)
    natively_multimodal: ClassVar[bool] = False  # trained on speech and text from the start: no text LLM to compare
    # Its processor lays out several audios in one prompt, between text spans (transformers' processors: one audio
    # per placeholder token); a family whose processor takes one audio per prompt hears one span of a document.
    audio_between_text: ClassVar[bool] = True
    base_llms: ClassVar[dict[str, str]] = {}  # a released checkpoint's hub id -> the text LLM it was built from

    # -- loading ---------------------------------------------------------------------------------------------

    def load_model(self, where: Path | str, dtype: torch.dtype, **hub) -> nn.Module:
        import transformers

        return getattr(transformers, self.model_class).from_pretrained(where, dtype=dtype, **hub).eval()

    def load_feature_extractor(self, where: Path | str, **hub):
        from transformers import AutoFeatureExtractor

        return AutoFeatureExtractor.from_pretrained(where, **hub)

    def decoder(self, model: nn.Module) -> tuple[nn.Module, nn.Module]:
        """(the text decoder that takes `inputs_embeds` and returns hidden states, its LM head): where transformers 5
        keeps them in its speech LLMs, unless a family says otherwise."""
        return model.model.language_model, model.lm_head

    # -- hearing ---------------------------------------------------------------------------------------------

    def audio_wrap(self, tokenizer) -> tuple[list[int], list[int]]:
        """Token ids the family puts right before and right after an audio's vectors (its audio_bos/eos)."""
        return [], []

    def features(self, feature_extractor, audio: np.ndarray) -> dict[str, torch.Tensor]:
        """The model's input features of one 16 kHz mono clip, batch size 1."""
        raise NotImplementedError

    def audio_embeds(self, model: nn.Module, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """(S, D) the vectors the model puts in place of the clip's placeholder tokens."""
        raise NotImplementedError

    @contextlib.contextmanager
    def reading(self, model: nn.Module, heard: bool):
        """Set the model up for a prompt with (`heard`) or without audio; most families need nothing."""
        yield

    def native_logits(self, model: nn.Module, tokenizer, features: dict[str, torch.Tensor], before: list[int],
                      after: list[int]) -> torch.Tensor:
        """(T, V) logits of the model's own forward on `before` + the clip's placeholder tokens as the family's
        processor expands them + `after`: what `decoder` must give on our embeddings (the tests compare them)."""
        raise NotImplementedError

    # -- offline tests -----------------------------------------------------------------------------------------

    def tiny(self, out: Path, seed: int = 0) -> Path:
        """Write a random-weight model of this family, a few layers wide, with its tokenizer and feature extractor,
        to `out` (and a tiny text LLM of the same vocabulary to `out/base`, unless natively multimodal)."""
        raise NotImplementedError
