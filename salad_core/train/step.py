"""One training forward: a batch of interleaved documents -> SALAD's loss at every next-is-text position.

    L = alpha * KL( teacher(all text) || student(interleaved) ) + (1 - alpha) * NLL( student(interleaved) )
        [+ ctc_weight * CTC(adapter frames, span tokens)   with the alignment aid, salad_core/model/ctc.py]

`DistillationStep` wraps the `SaladModel` in one `nn.Module` whose `forward(batch)` does the whole computation, so
`accelerate` (DDP/FSDP) sees every trainable parameter used inside a single forward call. The teacher reads the
all-text view under `no_grad` (shared frozen weights, LoRA off, or the frozen copy for full fine-tuning).

Shape legend: B documents, T_s / T_t student / teacher sequence length, D LLM width, N text positions in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from salad_core.losses import chunked_distillation_terms
from salad_core.model.ctc import ctc_loss
from salad_core.model.modeling import SaladModel
from salad_core.model.processing import PairedSequence, Segment, pad_rows, pair_segments, tokenize_segment


@dataclass
class Batch:
    docs: list[list[Segment]]  # per document, its segments (speech ones carry a clip_id)
    frames: list[torch.Tensor] = field(default_factory=list)  # encoder frames of every speech segment, in doc order
    replay: bool = False  # text-only replay batch
    speech_s: float = 0.0  # seconds of natural speech in the batch
    synthetic: int = 0  # Stage II: documents of selected synthetic speech in the batch (not counted in speech_s)
    ctc_only: bool = False  # the CTC warm-up: only the alignment aid's loss, the LLM does not run


def text_positions(tokenizer, batches: list[Batch]) -> int:
    """Positions whose next token is text in `batches`: each document's text tokens, less its first token when it
    opens with text (nothing predicts it). The KL and NLL are taken there."""
    def count(segments: list[Segment]) -> int:
        n = sum(len(tokenizer(s.text, add_special_tokens=False).input_ids) for s in segments if not s.is_speech)
        return n - (0 if segments[0].is_speech else 1)

    return sum(count(segments) for batch in batches for segments in batch.docs)


def ctc_targets(tokenizer, batches: list[Batch]) -> int:
    """Tokens of the speech spans in `batches`: the alignment aid's CTC targets (salad_core/model/ctc.py)."""
    return sum(len(tokenize_segment(tokenizer, s.text)) for batch in batches for segments in batch.docs
               for s in segments if s.is_speech)


def _parts(llm: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(decoder stack, output head) of a causal LM, through a PEFT wrapper if there is one."""
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    return base.get_decoder(), base.get_output_embeddings()


def _gather_rows(hidden: torch.Tensor, positions: list[torch.Tensor]) -> torch.Tensor:
    """(B, T, D) hidden states, per row its positions -> (N, D), in one index (per-row selects would each write a
    zero-filled copy of the whole batch in backward)."""
    length = hidden.shape[1]
    flat = torch.cat([torch.as_tensor(p, dtype=torch.long) + b * length for b, p in enumerate(positions)])
    return hidden.reshape(-1, hidden.shape[-1])[flat.to(hidden.device)]


class DistillationStep(nn.Module):
    def __init__(self, model: SaladModel, alpha: float, kl_direction: str = "forward", kl_temperature: float = 1.0,
                 kl_chunk: int = 512, ctc_weight: float = 1.0):
        super().__init__()
        self.model = model
        self.alpha, self.kl_direction, self.kl_temperature, self.kl_chunk = alpha, kl_direction, kl_temperature, kl_chunk
        self.ctc_weight = ctc_weight

    def speech_embeds(self, batch: Batch) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """The adapter's embeddings of every speech span, and the summed CTC loss when the alignment aid is on."""
        model = self.model
        if not batch.frames:
            return [], None
        full, logits = model.adapt_frames_with_ctc(batch.frames)
        if logits is None:
            return full, None
        spans = [s.text for doc in batch.docs for s in doc if s.is_speech]
        targets = [tokenize_segment(model.tokenizer, text) for text in spans]
        # the CTC warm-up needs the loss alone, not the soft tokens the LLM would read
        return ([] if batch.ctc_only else model.compress_ctc(full, logits)), ctc_loss(logits, targets)

    def pair_batch(self, batch: Batch, embeds: list[torch.Tensor]) -> tuple[list[PairedSequence], torch.Tensor, torch.Tensor]:
        """Both views of every document; the students' padded input embeddings (B, T_s, D) and mask."""
        model = self.model
        speech = iter(embeds)
        paired, student = [], []
        for segments in batch.docs:
            doc_speech = [next(speech) for s in segments if s.is_speech]
            sequence = pair_segments(model.tokenizer, segments, [e.shape[0] for e in doc_speech])
            paired.append(sequence)
            student.append(model.student_embeds(sequence, doc_speech))
        padded, mask = pad_rows(student)
        return paired, padded, mask

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Summed KL and NLL over the batch's text positions (divide by `n` for per-token means); in the CTC
        warm-up the summed CTC loss alone."""
        embeds, ctc = self.speech_embeds(batch)
        if batch.ctc_only:
            zero = ctc.new_zeros(())
            return {"loss": self.ctc_weight * ctc, "kl": zero, "nll": zero, "ctc": ctc.detach(), "n": torch.tensor(0)}
        paired, student_embeds, student_mask = self.pair_batch(batch, embeds)
        decoder, head = _parts(self.model.llm)
        hidden = decoder(inputs_embeds=student_embeds, attention_mask=student_mask).last_hidden_state  # (B, T_s, D)
        rows = _gather_rows(hidden, [p.student_pred for p in paired])  # (N, D)
        targets = torch.cat([p.targets for p in paired]).to(rows.device)
        teacher_rows, teacher_head = None, head
        if self.alpha > 0:
            teacher_rows, teacher_head = self.teacher_rows(paired)
        kl, nll = chunked_distillation_terms(rows, teacher_rows, targets, head, teacher_head, self.kl_direction,
                                             self.kl_temperature, self.kl_chunk)
        loss = self.alpha * kl + (1 - self.alpha) * nll
        if embeds:  # speech that only precedes nothing (a span at a document's end) still joins the graph, at weight 0,
            loss = loss + 0.0 * sum(e.sum() for e in embeds)  # so every process of a DDP run calls backward alike
        out = {"kl": kl.detach(), "nll": nll.detach(), "n": torch.tensor(rows.shape[0])}
        if ctc is not None:
            loss = loss + self.ctc_weight * ctc
            out["ctc"] = ctc.detach()
        return {"loss": loss, **out}

    @torch.no_grad()
    def teacher_rows(self, paired: list[PairedSequence]) -> tuple[torch.Tensor, nn.Module]:
        """The teacher's final hidden states at the aligned positions (N, D), and its output head."""
        device = self.model.llm.get_input_embeddings().weight.device
        ids, mask = (t.to(device) for t in pad_rows([p.teacher_ids for p in paired]))
        with self.model.teacher() as teacher:
            decoder, head = _parts(teacher)
            hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, T_t, D)
            return _gather_rows(hidden, [p.teacher_pred for p in paired]), head
