"""`SaladModel`: frozen speech encoder -> trainable adapter -> causal LLM, as one `transformers` model.

Follows Ultravox's layout (one PreTrainedModel holding audio tower, projector and language model) with SALAD's
teacher: the original LLM. While the student's LLM is frozen or LoRA-adapted, teacher and student share one copy
of the weights (LoRA is switched off for the teacher pass); only a fully fine-tuned student keeps a second, frozen
copy. Checkpoints hold only what was trained, plus the names of the encoder and the LLM they were built on.

Three ways in, as for any `PreTrainedModel`: `SaladModel(config, encoder, llm, tokenizer)` from parts already built
(reads nothing from disk), `SaladModel.build(config)` loading the parts by the names in the config (an untrained
adapter), and `SaladModel.from_pretrained(folder)` = build + the trained weights saved there.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from salad_core.errors import InputError
from salad_core.model.adapter import SpeechAdapter
from salad_core.model.config import SaladConfig
from salad_core.model.ctc import CTCHead, compress, greedy_tokens
from salad_core.model.encoder import SpeechEncoder
from salad_core.model.llm import load_llm, pinned_llm_name
from salad_core.model.placement import checked_device_map, checked_dtype
from salad_core.model.processing import IGNORE_INDEX, SPEECH_MARKER, HearsSegments, expand_markers, pad_rows

WEIGHTS_NAME = "model.safetensors"
ADAPTER_GROUP = 8  # clips per adapter call, grouped by length
AUTO_MODEL_DEFAULTS = ("revision", "trust_remote_code", "adapter_kwargs")  # what AutoModel adds to every call


@dataclass
class SaladOutput(CausalLMOutputWithPast):
    """The LLM's output on the sequence it read, and that sequence's (B, T') attention mask: each speech marker of
    the input stands there for its span's adapter frames, so T' differs from the input's T."""

    attention_mask: torch.LongTensor | None = None


class SaladModel(HearsSegments, PreTrainedModel):
    config_class = SaladConfig
    base_model_prefix = "salad"
    main_input_name = "input_ids"

    def __init__(self, config: SaladConfig, encoder: SpeechEncoder, llm: PreTrainedModel, tokenizer,
                 teacher_copy: PreTrainedModel | None = None):
        """Assemble built parts: a fresh adapter (and CTC head) on the device and in the dtype of the LLM's input
        embeddings. `config` is not changed: the model keeps a copy holding the parts' widths. A fully fine-tuned
        LLM (llm_mode "full") needs `teacher_copy`, a second copy of the original LLM to stay frozen."""
        config = _fitted_config(config, encoder, llm)
        _check_teacher_copy(config.llm_mode, llm, teacher_copy)
        super().__init__(config)
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.llm = llm
        table = llm.get_input_embeddings().weight
        self.adapter = SpeechAdapter(config).to(table.device, table.dtype)
        self.ctc = CTCHead(config.llm_hidden_size).to(table.device, table.dtype) if config.ctc_compress else None
        self.teacher_copy = None if teacher_copy is None else teacher_copy.requires_grad_(False).eval()
        self.post_init()
        # After post_init: it maps the LLM's tied weights by their plain paths, which a LoRA wrapper would move.
        self.llm = self._prepare_llm(llm, config)

    # -- building --------------------------------------------------------------------------------------------

    @classmethod
    def build(cls, config: SaladConfig, *, dtype: torch.dtype | str | None = None,
              device_map: str | int | torch.device | None = None) -> SaladModel:
        """A model with an untrained adapter, its encoder and LLM loaded by the names in `config` (the LLM's name
        pinned, see `pinned_llm_name`; `config` itself is not changed).

        `dtype` (None: float32) is the LLM's, the adapter's, the CTC head's and the encoder's Whisper layers' (LoRA
        weights stay float32, peft's default). `device_map`: None or "cpu" (the CPU), a device ("cuda", "cuda:1",
        a torch.device, a GPU index), or "auto" / "balanced" / "balanced_low_0" / "sequential", passed to the LLM's
        own `from_pretrained`; the encoder and the adapter go to the device of the LLM's input embeddings.
        """
        dtype, device_map = checked_dtype(dtype), checked_device_map(device_map)
        config = copy.deepcopy(config)
        config.llm_name = pinned_llm_name(config.llm_name)
        encoder = SpeechEncoder.load(config.encoder_name, context=config.encoder_context, dtype=dtype)
        llm, tokenizer = load_llm(config.llm_name, dtype, device_map=device_map)
        teacher = None
        if config.llm_mode == "full":
            teacher = load_llm(config.llm_name, dtype, device_map=device_map)[0]
        encoder = encoder.to(llm.get_input_embeddings().weight.device)
        return cls(config, encoder, llm, tokenizer, teacher_copy=teacher)

    @staticmethod
    def _prepare_llm(llm: nn.Module, config: SaladConfig) -> nn.Module:
        if config.llm_mode == "frozen":
            return llm.requires_grad_(False)
        if config.llm_mode == "lora":
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, target_modules=list(config.lora_targets))
            return get_peft_model(llm, lora)
        return llm.requires_grad_(True)

    def _init_weights(self, module: nn.Module) -> None:
        """Only the adapter is ever freshly initialised, by its own layers' defaults."""

    # -- the forward pass ------------------------------------------------------------------------------------

    def forward(self, input_ids: torch.LongTensor, speech_frames: list[torch.Tensor] | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.LongTensor | None = None,
                **llm_kwargs) -> SaladOutput:
        """The student's logits (and the next-token loss given `labels`) on documents with heard spans.

        input_ids (B, T): token ids with one SPEECH_MARKER (-1) per heard span (`processing.marked_ids` builds a
        document's); speech_frames: the encoder frames (F_j, C) of every span, in order over the batch;
        attention_mask (B, T): 1 at the real positions (padding on either side); labels (B, T): the token each
        position is, IGNORE_INDEX (-100) where no loss is taken; speech positions never carry one. The adapter
        turns each span's frames into S_j embeddings that take its marker's place, so the LLM reads rows of
        T'_b = T_b + sum(S_j - 1) positions, right-padded to T'; `llm_kwargs` go to the LLM.
        Returns logits (B, T', V), `loss` (mean cross-entropy of each position against the next label, as the
        LLM's own) and the (B, T') attention mask of what the LLM read.
        """
        frames = list(speech_frames or [])
        valid = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        markers = int((input_ids[valid] == SPEECH_MARKER).sum())
        if markers != len(frames):
            raise ValueError(f"input_ids hold {markers} speech markers ({SPEECH_MARKER}) but speech_frames "
                             f"{len(frames)} spans. Fix: give the encoder frames of one span per marker, in order.")
        speech = iter(self.adapt_frames(frames))
        rows, row_labels = [], []
        for b in range(input_ids.shape[0]):
            ids = input_ids[b][valid[b]]
            spans = [next(speech) for _ in range(int((ids == SPEECH_MARKER).sum()))]
            source, placed = expand_markers(ids, [s.shape[0] for s in spans])
            expanded = ids[source]  # a marker per speech frame
            rows.append(self.spliced_embeds(expanded, placed, spans))
            if labels is not None:
                row_labels.append(labels[b][valid[b]][source].masked_fill(expanded == SPEECH_MARKER, IGNORE_INDEX))
        embeds, mask = pad_rows(rows)  # (B, T', D), (B, T')
        if labels is not None:
            labels = pad_rows(row_labels)[0].masked_fill(mask == 0, IGNORE_INDEX)
        out = self.llm(inputs_embeds=embeds, attention_mask=mask, labels=labels, **llm_kwargs)
        return SaladOutput(**out, attention_mask=mask)

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

    audio_between_text = True  # it hears every speech span of a document where it is

    def probe_source(self) -> tuple[str, str]:
        """(LLM name, encoder name) that choose and cache its held-out probe documents (eval/probes.py)."""
        return self.config.llm_name, str(self.encoder.name)

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
            raise InputError("This model has no CTC head (trained with align 'none'), so it spells nothing out. "
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
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *model_args, config: SaladConfig | None = None,
                        dtype: torch.dtype | str | None = None, device_map: str | int | torch.device | None = None,
                        **kwargs) -> SaladModel:
        """The model saved in a folder: `build` (with `dtype` and `device_map`) + the trained weights there, in
        eval mode. `config` replaces the folder's config.json; its weights must fit it exactly."""
        folder = Path(pretrained_model_name_or_path)
        _check_unused(model_args, kwargs)
        if not (folder / WEIGHTS_NAME).is_file():
            raise InputError(f"{folder} holds no {WEIGHTS_NAME}: not a saved SaladModel. Fix: pass a folder written "
                             "by save_pretrained.")
        if config is not None and not isinstance(config, SaladConfig):
            raise TypeError(f"config is a {type(config).__name__}, not a SaladConfig. "
                            "Fix: pass a SaladConfig, or none to read the folder's.")
        model = cls.build(config or SaladConfig.from_pretrained(folder), dtype=dtype, device_map=device_map)
        state = load_file(folder / WEIGHTS_NAME)
        expected = set(model.trained_state_dict())
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise InputError(f"{folder}/{WEIGHTS_NAME} does not fit this config: missing {sorted(missing)[:5]}, "
                             f"unexpected {sorted(unexpected)[:5]}")
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


def _fitted_config(config: SaladConfig, encoder: SpeechEncoder, llm: PreTrainedModel) -> SaladConfig:
    """A copy of `config` holding the widths of the parts; a width it already names must be theirs."""
    widths = {"encoder_hidden_size": encoder.hidden_size, "llm_hidden_size": llm.config.hidden_size}
    for field, width in widths.items():
        if getattr(config, field) not in (None, width):
            raise ValueError(f"config.{field}={getattr(config, field)} but the parts given are {width} wide "
                             f"(encoder {config.encoder_name!r}, LLM {config.llm_name!r}): its adapter does not fit "
                             f"them. Fix: pass the parts it was made for, or a config with {field}=None.")
    config = copy.deepcopy(config)
    for field, width in widths.items():
        setattr(config, field, width)
    return config


def _check_teacher_copy(llm_mode: str, llm: nn.Module, teacher_copy: nn.Module | None) -> None:
    if llm_mode == "full" and (teacher_copy is None or teacher_copy is llm):
        raise ValueError("llm_mode 'full' trains the LLM itself, so the teacher must be a second copy of it. "
                         "Fix: pass teacher_copy (the original LLM loaded again), or use SaladModel.build(config).")
    if llm_mode != "full" and teacher_copy is not None:
        raise ValueError(f"llm_mode {llm_mode!r} shares the LLM's weights with the teacher: a teacher_copy would "
                         "never be read. Fix: pass teacher_copy only with llm_mode 'full'.")


def _check_unused(model_args: tuple, kwargs: dict) -> None:
    """`AutoModel.from_pretrained` passes hub options at their defaults; any other argument would be dropped."""
    unused = sorted(k for k, v in kwargs.items() if k not in AUTO_MODEL_DEFAULTS or not _asks_nothing(v))
    if model_args or unused:
        raise TypeError("SaladModel.from_pretrained takes a folder, config, dtype and device_map; got also "
                        f"{[*model_args, *unused]}. Fix: drop them (the encoder and the LLM are loaded by the names "
                        "in the folder's config.json, from the local folders or cache).")


def _asks_nothing(value: object) -> bool:
    return value is None or value is False or (isinstance(value, dict) and all(map(_asks_nothing, value.values())))


AutoConfig.register("salad", SaladConfig, exist_ok=True)
AutoModel.register(SaladConfig, SaladModel, exist_ok=True)
