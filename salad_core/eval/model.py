"""What the evaluation needs from a model, declared once: `EvaluatedModel`.

Three kinds of model satisfy it: a `SaladModel` (salad_core/model), a `transformers` speech LLM seen through
`SpeechLLM` (salad_core/speechllm), and `TextLLM` below, a text LLM alone (the mini world's LM while it pretrains:
its stopping rule is scored by the same evaluation as everything else, on the lane where the original LLM reads).

Readers: "teacher" is the original LLM, "student" the adapted model; `tokenizer_for` and `prompt` say how each one
tokenizes and frames a prompt whose options it scores, `chat` a prompt it answers in its own words.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from salad_core.model.processing import HearsSegments, PairedSequence, Segment


@runtime_checkable
class EvaluatedModel(Protocol):
    encoder: Any  # `.name` and `.encode(audios) -> frames`; None for a model that does not hear
    llm: nn.Module  # the adapted model's LLM as it hears (input embeddings with speech spliced in)
    tokenizer: Any  # the adapted model's tokenizer
    student_llm_is_teacher: bool  # the adapted model reads text exactly as the original LLM (a frozen LLM)
    teacher_reads_student_tokens: bool  # both share a vocabulary, so F is defined token by token
    audio_between_text: bool  # it hears several speech spans of one prompt, between text spans

    @property
    def text_reader(self) -> nn.Module:
        """The adapted model's LLM as it reads text."""

    def teacher(self) -> AbstractContextManager[nn.Module]:
        """The original LLM, unable to learn."""

    def tokenizer_for(self, reader: str) -> Any: ...

    def prompt(self, segments: list[Segment], reader: str) -> list[Segment]: ...

    def chat(self, segments: list[Segment], reader: str) -> list[Segment]: ...

    def pair(self, segments: list[Segment],
             speech_embeds: list[torch.Tensor] | None = None) -> tuple[PairedSequence, torch.Tensor]: ...

    def adapt_frames(self, frames: list[torch.Tensor]) -> list[torch.Tensor]: ...

    def embed_speech(self, audios: list[np.ndarray]) -> list[torch.Tensor]: ...

    def probe_source(self) -> tuple[str, str]:
        """(LLM name, encoder name) that choose and cache its held-out probe documents (eval/probes.py)."""


class TextLLM(HearsSegments):
    """A causal text LLM alone, as the evaluation reads it: it is its own original and adapted model and hears
    nothing, so only the lanes that read the question apply to it."""

    encoder = None
    student_llm_is_teacher = True
    audio_between_text = False

    def __init__(self, llm: nn.Module, tokenizer):
        self.llm, self.tokenizer = llm, tokenizer

    @property
    def text_reader(self) -> nn.Module:
        return self.llm

    @contextlib.contextmanager
    def teacher(self) -> Iterator[nn.Module]:
        with torch.no_grad():
            yield self.llm

    def embed_speech(self, audios: list[np.ndarray]) -> list[torch.Tensor]:
        raise ValueError("A text LLM hears nothing: score it on the lanes that read the question (base_text, text).")

    def adapt_frames(self, frames: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.embed_speech([])

    def probe_source(self) -> tuple[str, str]:
        raise ValueError("A text LLM hears nothing, so it has no probe documents to hear (corpus M).")
