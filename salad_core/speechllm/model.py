"""`SpeechLLM`: a `transformers` speech LLM (and the text LLM it was built from), seen through the interface the
evaluation scores a SaladModel by, so every lane, F and M and the explorer's hidden states come out of the same code.

    student   the speech LLM: it hears (its family's audio vectors spliced into its decoder's input embeddings) and
              reads (its own decoder on text), each prompt framed by its own chat template
    teacher   the text LLM it was built from (`--llm`, or the family's known one); a natively multimodal model has
              none, so the cascade's reader is the speech LLM reading text and forgetting is not applicable

A speech LLM's "encoder frames" are its waveforms: its front end (the processor's feature extractor, the audio tower
and projector) runs in `adapt_frames`, so code written for cached frames hears raw audio here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from salad_core.model.processing import HearsSegments, Segment, chat_segments
from salad_core.speechllm.family import SpeechLLMFamily

ANSWER_CUE = "Answer:"  # where the assistant's turn starts in a chat-framed prompt (eval/lanes.py's templates)


class DecoderLM(nn.Module):
    """A speech LLM's text decoder and LM head as one causal LM over token ids or input embeddings (the calls
    `score_options`, `greedy_answer` and the divergences make); `reading` sets the model up around every call."""

    def __init__(self, body: nn.Module, head: nn.Module, reading: Callable[[], contextlib.AbstractContextManager]):
        super().__init__()
        self.body, self.head, self.reading = body, head, reading

    def get_input_embeddings(self) -> nn.Module:
        return self.body.get_input_embeddings()

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, cache=None, use_cache=False,
                logits_to_keep: int | torch.Tensor = 0, output_hidden_states: bool = False) -> CausalLMOutputWithPast:
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        with self.reading():
            out = self.body(inputs_embeds=inputs_embeds, attention_mask=attention_mask, cache=cache,
                            use_cache=use_cache, output_hidden_states=output_hidden_states)
        states = out.last_hidden_state
        if isinstance(logits_to_keep, int):
            states = states[:, -logits_to_keep:] if logits_to_keep else states
        else:
            states = states[:, logits_to_keep]
        return CausalLMOutputWithPast(logits=self.head(states), cache=out.cache, hidden_states=out.hidden_states)


class WaveformFrontEnd:
    """The speech LLM's stand-in for a SaladModel's encoder: its "frames" are the 16 kHz waveform itself."""

    def __init__(self, name: str):
        self.name = name  # never a cached encoder's name, so cached frames are never taken for this model's input

    def encode(self, audios: list[np.ndarray]) -> list[torch.Tensor]:
        return [torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in audios]


class SpeechLLM(HearsSegments, nn.Module):
    def __init__(self, name: str, family: SpeechLLMFamily, model: nn.Module, tokenizer, feature_extractor,
                 base: nn.Module | None = None, base_tokenizer=None, base_name: str | None = None):
        super().__init__()
        self.name, self.family, self.model = name, family, model
        self.tokenizer, self.feature_extractor = tokenizer, feature_extractor
        self.base, self.base_tokenizer, self.base_name = base, base_tokenizer, base_name
        body, head = family.decoder(model)
        self.llm = DecoderLM(body, head, lambda: family.reading(model, heard=True))  # hears
        self.text_reader = DecoderLM(body, head, lambda: family.reading(model, heard=False))  # reads
        self.encoder = WaveformFrontEnd(f"{family.name}:{name}")
        self.teacher_reads_student_tokens = base is not None and base_tokenizer.get_vocab() == tokenizer.get_vocab()
        self.audio_between_text = family.audio_between_text
        self._wrap = family.audio_wrap(tokenizer)

    @property
    def student_llm_is_teacher(self) -> bool:
        return False

    @contextlib.contextmanager
    def teacher(self):
        """The text LLM the speech LLM was built from; without one, the speech LLM reading text."""
        with torch.no_grad():
            yield self.base if self.base is not None else self.text_reader

    def tokenizer_for(self, reader: str):
        return self.base_tokenizer if reader == "teacher" and self.base is not None else self.tokenizer

    def prompt(self, segments: list[Segment], reader: str) -> list[Segment]:
        return chat_prompt(self.tokenizer_for(reader), segments)

    chat = prompt  # a speech LLM reads every prompt in its chat template

    def probe_source(self) -> tuple[str, str]:
        """(LLM name, encoder name) that choose and cache its held-out probe documents (eval/probes.py): broad
        English, spoken and cached once under the offline default's encoder, so a speech LLM is measured on the same
        documents and audio as the smol preset (it hears the audio itself, never the cached frames)."""
        from salad_core.presets import get_preset

        return self.name, get_preset("smol").encoder_name

    # -- hearing ---------------------------------------------------------------------------------------------

    def embed_speech(self, audios: list[np.ndarray]) -> list[torch.Tensor]:
        return self.adapt_frames(self.encoder.encode(audios))

    @torch.no_grad()
    def adapt_frames(self, frames: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per clip (S_i, D): the family's audio vectors between its audio marker tokens."""
        before, after = (self.embed_text(torch.tensor(ids, dtype=torch.long)) for ids in self._wrap)
        out = []
        for wave in frames:
            features = {k: v.to(before.device, before.dtype) if v.is_floating_point() else v.to(before.device)
                        for k, v in self.family.features(self.feature_extractor, wave.numpy()).items()}
            vectors = self.family.audio_embeds(self.model, features).to(before.dtype)
            out.append(torch.cat([before, vectors, after]))
        return out

    # -- what a run records ------------------------------------------------------------------------------------

    def record(self) -> dict:
        return {"model_id": self.name, "name": self.name, "llm": self.base_name, "encoder": f"{self.family.name} audio tower",
                "adapter": {"family": self.family.name, "natively_multimodal": self.family.natively_multimodal,
                            "audio_between_text": self.audio_between_text},
                "path": None, "params": self.parameter_table()}  # no SaladModel folder: its run's config rebuilds it

    def parameter_table(self) -> dict[str, dict[str, int]]:
        parts = {"speech_llm": self.model, **({"base_llm": self.base} if self.base is not None else {})}
        return {name: {"total": sum(p.numel() for p in part.parameters()), "trainable": 0} for name, part in parts.items()}


def chat_prompt(tokenizer, segments: list[Segment]) -> list[Segment]:
    """`segments` framed by the reader's chat template: the user's turn up to the answer cue, the assistant's turn
    from it (so the options continue "Answer:" as the model's own reply). Unchanged without a chat template."""
    if not getattr(tokenizer, "chat_template", None):
        return segments
    at = max(i for i, s in enumerate(segments) if ANSWER_CUE in s.text)
    cue = segments[at]
    asked, _, answered = cue.text.rpartition(ANSWER_CUE)
    turn = chat_segments(tokenizer, [*segments[:at], Segment(asked.rstrip(), cue.audio, cue.clip_id)])
    return [*turn[:-1], Segment(turn[-1].text + ANSWER_CUE + answered), *segments[at + 1:]]


# -- loading ---------------------------------------------------------------------------------------------------


def load_speech_llm(name: str, base: str | None = None, trust_remote_code: bool = False,
                    dtype: torch.dtype | None = None) -> SpeechLLM:
    """The speech LLM `name` (hub id or folder) and its text LLM: `base`, else the family's known one for a released
    checkpoint, else a folder's `base/` (how salad's tiny test models keep theirs), else none. On a GPU when there is
    one, in bfloat16 there and float32 on the CPU unless `dtype` says otherwise."""
    from transformers import AutoConfig, AutoTokenizer

    from salad_core.model.llm import hub_kwargs, load_llm, offline_error
    from salad_core.speechllm.families import family_for

    where: Path | str = Path(name).expanduser() if Path(name).expanduser().is_dir() else name
    hub = hub_kwargs(where)
    try:
        config = AutoConfig.from_pretrained(where, **hub)
        family = family_for(config.model_type)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = dtype or (torch.bfloat16 if device == "cuda" else torch.float32)
        model = family.load_model(where, dtype, **hub).to(device)
        tokenizer = AutoTokenizer.from_pretrained(where, **hub)
        feature_extractor = family.load_feature_extractor(where, **hub)
    except OSError as err:
        raise offline_error(name, "speech LLM", err) from err
    except ImportError as err:
        raise ImportError(f"Loading the speech LLM '{name}' ({type(err).__name__}: {err}). Fix: install the package "
                          "it names into this environment (docs/diagnose-your-model.md lists each family's).") from err
    base = base or family.base_llms.get(str(name))
    if base is None and isinstance(where, Path) and (where / "base" / "config.json").is_file():
        base = str(where / "base")
    base_model = base_tokenizer = None
    if base is not None:
        base_model, base_tokenizer = load_llm(base, dtype=dtype, trust_remote_code=trust_remote_code)
        base_model.to(device)
    return SpeechLLM(str(name), family, model, tokenizer, feature_extractor, base_model, base_tokenizer, base).eval()
