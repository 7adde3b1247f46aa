"""`SaladModel`: frozen speech encoder -> trainable adapter -> causal LLM, as one `transformers` model.

Follows Ultravox's layout (one PreTrainedModel holding audio tower, projector and language model) with SALAD's
teacher: the original LLM. While the student's LLM is frozen or LoRA-adapted, teacher and student share one copy
of the weights (LoRA is switched off for the teacher pass); only a fully fine-tuned student keeps a second, frozen
copy. Checkpoints hold only what was trained, plus the names of the encoder and the LLM they were built on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from salad_core.model.adapter import SpeechAdapter
from salad_core.model.config import SaladConfig
from salad_core.model.ctc import CTCHead, compress, greedy_tokens
from salad_core.model.encoder import SpeechEncoder
from salad_core.model.llm import load_llm, pinned_llm_name
from salad_core.model.processing import HearsSegments

WEIGHTS_NAME = "model.safetensors"
ADAPTER_GROUP = 8  # clips per adapter call, grouped by length


class SaladModel(HearsSegments, PreTrainedModel):
    config_class = SaladConfig
    base_model_prefix = "salad"
    main_input_name = "inputs_embeds"

    def __init__(self, config: SaladConfig, encoder: SpeechEncoder | None = None, llm=None, tokenizer=None):
        super().__init__(config)
        config.llm_name = pinned_llm_name(config.llm_name)
        self.encoder = encoder or SpeechEncoder.load(config.encoder_name, context=config.encoder_context)
        if llm is None:
            llm, tokenizer = load_llm(config.llm_name)
        self.tokenizer = tokenizer
        config.encoder_hidden_size = self.encoder.hidden_size
        config.llm_hidden_size = llm.config.hidden_size
        self.llm = llm
        self.adapter = SpeechAdapter(config)
        self.ctc = CTCHead(config.llm_hidden_size) if config.ctc_compress else None
        self.teacher_copy = self._frozen_copy(llm_name=config.llm_name) if config.llm_mode == "full" else None
        self.post_init()
        # After post_init: it maps the LLM's tied weights by their plain paths, which a LoRA wrapper would move.
        self.llm = self._prepare_llm(llm, config)

    # -- building --------------------------------------------------------------------------------------------

    @staticmethod
    def _prepare_llm(llm: nn.Module, config: SaladConfig) -> nn.Module:
        if config.llm_mode == "frozen":
            return llm.requires_grad_(False)
        if config.llm_mode == "lora":
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, target_modules=list(config.lora_targets))
            return get_peft_model(llm, lora)
        return llm.requires_grad_(True)

    @staticmethod
    def _frozen_copy(llm_name: str) -> nn.Module:
        teacher, _ = load_llm(llm_name)
        return teacher.requires_grad_(False).eval()

    def _init_weights(self, module: nn.Module) -> None:
        """Only the adapter is ever freshly initialised, by its own layers' defaults."""

    # -- the teacher -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def teacher(self) -> Iterator[nn.Module]:
        """The original LLM, unable to learn: the shared frozen weights, LoRA switched off, or the frozen copy."""
        if self.teacher_copy is not None:
            yield self.teacher_copy
        elif self.config.llm_mode == "lora":
            with self.llm.disable_adapter(), torch.no_grad():
                yield self.llm
        else:
            with torch.no_grad():
                yield self.llm

    def train(self, mode: bool = True) -> SaladModel:
        """Train mode for what learns; the frozen encoder and the teacher copy stay in eval mode (no dropout in a
        model that must not change)."""
        super().train(mode)
        self.encoder.eval()
        if self.teacher_copy is not None:
            self.teacher_copy.eval()
        return self

    @property
    def text_reader(self) -> nn.Module:
        """The adapted model's LLM as it reads text (for SaladModel the same module that hears)."""
        return self.llm

    @property
    def student_llm_is_teacher(self) -> bool:
        """True when the adapted model reads text exactly as the original LLM does (frozen LLM)."""
        return self.config.llm_mode == "frozen"

    # -- embeddings ------------------------------------------------------------------------------------------

    def embed_speech(self, audios: list[np.ndarray]) -> list[torch.Tensor]:
        """Per clip (S_i, D) LLM-space embeddings from 16 kHz audio."""
        frames = self.encoder.encode(audios)  # list of (F_i, C)
        return self.adapt_frames(frames)

    def adapt_frames(self, frames: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per clip (S_i, D) LLM-space embeddings from encoder frames (CTC-compressed when the aid is on)."""
        embeds, logits = self.adapt_frames_with_ctc(frames)
        if self.ctc is None:
            return embeds
        return self.compress_ctc(embeds, logits)

    def compress_ctc(self, embeds: list[torch.Tensor], logits: list[torch.Tensor]) -> list[torch.Tensor]:
        """What the LLM reads of each clip with the CTC aid: one adapter output or soft token per recognised token."""
        vocabulary = self.llm.get_input_embeddings().weight if self.config.ctc_read == "soft" else None
        return [compress(e, l, vocabulary) for e, l in zip(embeds, logits)]

    @torch.no_grad()
    def heard_words(self, frames: list[torch.Tensor]) -> list[str]:
        """What the CTC aid recognises in each clip (greedy decoding, as text); needs a model trained with the aid."""
        if self.ctc is None:
            raise ValueError("This model has no CTC head (trained with align 'none'), so it spells nothing out. "
                             "Fix: use a model trained with --align ctc or ctc-soft.")
        _, logits = self.adapt_frames_with_ctc(frames)
        return [self.tokenizer.decode(greedy_tokens(l)).strip() for l in logits]

    def adapt_frames_with_ctc(self, frames: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """Uncompressed adapter outputs per clip, and their CTC logits (None without the alignment aid).

        Clips run in groups of similar length (a short span padded to a whole spoken document would waste most of
        the adapter's work); the adapter is causal with a padding mask, so grouping does not change any output.
        """
        order = sorted(range(len(frames)), key=lambda i: frames[i].shape[0])
        embeds: list[torch.Tensor | None] = [None] * len(frames)
        logits: list[torch.Tensor | None] = [None] * len(frames)
        for start in range(0, len(order), ADAPTER_GROUP):
            group = order[start : start + ADAPTER_GROUP]
            group_embeds, group_logits = self._adapt_group([frames[i] for i in group])
            for k, i in enumerate(group):
                embeds[i] = group_embeds[k]
                if group_logits is not None:
                    logits[i] = group_logits[k]
        return embeds, (None if self.ctc is None else logits)  # type: ignore[return-value]

    def _adapt_group(self, frames: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        weight = next(self.adapter.parameters())
        lengths = torch.tensor([f.shape[0] for f in frames], device=weight.device)
        padded = nn.utils.rnn.pad_sequence(frames, batch_first=True)  # (B, F, C)
        embeds, out_lengths = self.adapter(padded.to(device=weight.device, dtype=weight.dtype), lengths)
        # unbind + slice, not embeds[i, :n]: each select's backward would write a zero-filled copy of the whole batch
        sizes = out_lengths.tolist()
        per_clip = [e[:n] for e, n in zip(embeds.unbind(0), sizes)]
        if self.ctc is None:
            return per_clip, None
        logits = self.ctc.logits(embeds, self.llm.get_input_embeddings().weight)  # one matmul for the group
        return per_clip, [l[:n] for l, n in zip(logits.unbind(0), sizes)]

    # -- saving and loading ----------------------------------------------------------------------------------

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """Adapter weights, plus LoRA weights or the whole LLM when those were trained. Never the encoder."""
        state = {f"adapter.{k}": v for k, v in self.adapter.state_dict().items()}
        if self.ctc is not None:
            state.update({f"ctc.{k}": v for k, v in self.ctc.state_dict().items()})
        if self.config.llm_mode == "lora":
            state.update({f"llm.{k}": v for k, v in self.llm.state_dict().items() if "lora_" in k})
        elif self.config.llm_mode == "full":
            seen: set[int] = set()
            for k, v in self.llm.state_dict().items():
                if v.data_ptr() not in seen:  # tied embeddings are stored once
                    seen.add(v.data_ptr())
                    state[f"llm.{k}"] = v
        return {k: v.detach().contiguous().cpu() for k, v in state.items()}

    def save_pretrained(self, save_directory: str | Path, **_) -> None:
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        self.config.architectures = [type(self).__name__]
        self.config.save_pretrained(out)
        save_file(self.trained_state_dict(), out / WEIGHTS_NAME, metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *args, config: SaladConfig | None = None, **kwargs):
        folder = Path(pretrained_model_name_or_path)
        if not (folder / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(f"{folder} holds no {WEIGHTS_NAME}: not a saved SaladModel. Fix: pass a folder written by save_pretrained.")
        config = config if isinstance(config, SaladConfig) else SaladConfig.from_pretrained(folder)
        model = cls(config)
        state = load_file(folder / WEIGHTS_NAME)
        expected = set(model.trained_state_dict())
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ValueError(f"{folder}/{WEIGHTS_NAME} does not fit this config: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
        model.load_state_dict(state, strict=False)
        return model.eval()

    def parameter_table(self) -> dict[str, dict[str, int]]:
        """Total and trainable parameter counts per part (encoder, adapter, llm)."""
        parts = {"encoder": self.encoder, "adapter": self.adapter, "llm": self.llm}
        if self.ctc is not None:
            parts["ctc"] = self.ctc
        return {
            name: {
                "total": sum(p.numel() for p in part.parameters()),
                "trainable": sum(p.numel() for p in part.parameters() if p.requires_grad),
            }
            for name, part in parts.items()
        }


AutoConfig.register("salad", SaladConfig, exist_ok=True)
AutoModel.register(SaladConfig, SaladModel, exist_ok=True)
