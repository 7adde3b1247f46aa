"""Interleaved text/speech sequences: one document as segments, read by the teacher and heard by the student.

A `Segment` holds what is said or written (`text`) and, for speech spans, the audio the student hears instead. The
teacher (the original LLM) always reads every segment as text; the student reads text segments and hears speech
segments. Text segments are tokenized identically in both views, so every text token has a partner position in
each sequence: the positions whose *next* token is text are where SALAD's loss and the token-level M are taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SPEECH_MARKER = -1  # a heard position among token ids: one per adapter frame, or one per span before expansion
IGNORE_INDEX = -100  # a label no loss is taken at (the `transformers` convention)


@dataclass(frozen=True, eq=False)
class Segment:
    text: str
    audio: np.ndarray | None = None  # 16 kHz mono float32; set -> the student hears this span
    clip_id: str | None = None  # or: a clip whose encoder frames are cached (training data)

    @property
    def is_speech(self) -> bool:
        return self.audio is not None or self.clip_id is not None


@dataclass
class PairedSequence:
    """Token ids of both views and the aligned prediction positions.

    `student_ids` has SPEECH_MARKER where the student hears speech; `speech_spans` lists (start, length) of those
    runs, filled by the adapter's outputs. `student_pred[i]` and `teacher_pred[i]` predict the same text token
    `targets[i]`.
    """

    teacher_ids: torch.Tensor  # (T_t,)
    student_ids: torch.Tensor  # (T_s,) with -1 at speech positions
    speech_spans: list[tuple[int, int]]
    teacher_pred: torch.Tensor  # (N,)
    student_pred: torch.Tensor  # (N,)
    targets: torch.Tensor  # (N,)


def tokenize_segment(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids


def pair_segments(tokenizer, segments: list[Segment], speech_lengths: list[int]) -> PairedSequence:
    """Lay out both views. `speech_lengths[j]` = adapter frames of the j-th speech segment."""
    teacher, student, spans = [], [], []
    teacher_pred, student_pred, targets = [], [], []
    speech_iter = iter(speech_lengths)
    for segment in segments:
        ids = tokenize_segment(tokenizer, segment.text)
        if segment.is_speech:
            n = next(speech_iter)
            spans.append((len(student), n))
            student.extend([SPEECH_MARKER] * n)
            teacher.extend(ids)
            continue
        for token in ids:
            if teacher and student:  # the very first token of a sequence has no prediction position
                teacher_pred.append(len(teacher) - 1)
                student_pred.append(len(student) - 1)
                targets.append(token)
            teacher.append(token)
            student.append(token)
    as_long = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
    return PairedSequence(as_long(teacher), as_long(student), spans, as_long(teacher_pred), as_long(student_pred), as_long(targets))


def marked_ids(tokenizer, segments: list[Segment]) -> torch.Tensor:
    """(T,) the student's token ids of one document with one SPEECH_MARKER per heard span: `SaladModel`'s input_ids."""
    return pair_segments(tokenizer, segments, [1] * sum(s.is_speech for s in segments)).student_ids


def expand_markers(ids: torch.Tensor, lengths: list[int]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Make room for each heard span: (T,) ids with one SPEECH_MARKER per span, `lengths[j]` frames of the j-th.

    Returns the (T',) source index (the input position each expanded position comes from; `ids[source]` has one
    marker per frame, as `PairedSequence.student_ids`) and each span's (start, length) in the expanded sequence.
    """
    is_marker = (ids == SPEECH_MARKER).cpu()
    if int(is_marker.sum()) != len(lengths):
        raise ValueError(f"{int(is_marker.sum())} speech markers ({SPEECH_MARKER}) in the ids but {len(lengths)} "
                         "spans to put there. Fix: give one span of speech frames per marker, in order.")
    repeats = torch.ones(ids.shape[0], dtype=torch.long)
    repeats[is_marker] = torch.tensor(lengths, dtype=torch.long)
    starts = torch.cumsum(repeats, 0) - repeats
    source = torch.repeat_interleave(torch.arange(ids.shape[0]), repeats)
    return source.to(ids.device), list(zip(starts[is_marker].tolist(), lengths))


def pad_rows(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (T_i, ...) tensors with zeros into (B, T, ...), and the (B, T) long attention mask.

    Built by one gather from the concatenated rows rather than `pad_sequence`, whose per-row slice copies each write
    a zero-filled copy of the whole padded tensor in backward (quadratic in the number of rows).
    """
    lengths = torch.tensor([row.shape[0] for row in rows])
    flat = torch.cat([*rows, rows[0].new_zeros((1, *rows[0].shape[1:]))])  # last row: the padding
    starts = torch.cumsum(lengths, 0) - lengths
    steps = torch.arange(int(lengths.max()))
    mask = steps[None, :] < lengths[:, None]  # (B, T)
    index = torch.where(mask, starts[:, None] + steps[None, :], flat.shape[0] - 1)
    return flat[index.to(flat.device)], mask.long().to(flat.device)


def chat_segments(tokenizer, segments: list[Segment]) -> list[Segment]:
    """`segments` as the user's turn of the LLM's chat template, the assistant's turn opened after them (an
    instruction-tuned LLM answers there rather than ending its turn); unchanged for an LLM without a template."""
    if not getattr(tokenizer, "chat_template", None):
        return segments
    marker = "\x00"
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": marker}], tokenize=False,
                                             add_generation_prompt=True)
    before, after = rendered.split(marker)
    first, last = segments[0], segments[-1]
    return [Segment(before + first.text, first.audio, first.clip_id), *segments[1:-1],
            Segment(last.text + after, last.audio, last.clip_id)]


class HearsSegments:
    """Both views of a document for any model that reads with `llm` and `tokenizer` and turns audio into LLM-space
    vectors with `embed_speech`: SaladModel (adapter outputs) and a speech LLM diagnosed as it is (salad_core.speechllm).

    The reader-facing part of the evaluation is the same for both: `tokenizer_for` and `prompt` say how a reader
    ("teacher": the original LLM, "student": the adapted model) tokenizes and frames a prompt; SaladModel reads plain
    prompts with one tokenizer, a speech LLM its own chat template.
    """

    teacher_reads_student_tokens = True  # the teacher's vocabulary is the student's: F is defined token by token

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        table = self.llm.get_input_embeddings()
        return table(ids.to(table.weight.device))

    def tokenizer_for(self, reader: str):
        return self.tokenizer

    def prompt(self, segments: list[Segment], reader: str) -> list[Segment]:
        """How `reader` frames a prompt whose options it scores: as it was trained to read (plain text)."""
        return segments

    def chat(self, segments: list[Segment], reader: str) -> list[Segment]:
        """How `reader` frames a prompt it answers in its own words: its chat template's user turn, when it has one."""
        return chat_segments(self.tokenizer_for(reader), segments)

    def pair(self, segments: list[Segment], speech_embeds: list[torch.Tensor] | None = None) -> tuple[PairedSequence, torch.Tensor]:
        """Both views of one document, and the student's input embeddings (T_s, D)."""
        speech = [s.audio for s in segments if s.is_speech]
        if speech_embeds is None:
            speech_embeds = self.embed_speech(speech) if speech else []
        paired = pair_segments(self.tokenizer, segments, [e.shape[0] for e in speech_embeds])
        return paired, self.student_embeds(paired, speech_embeds)

    def student_embeds(self, paired: PairedSequence, speech_embeds: list[torch.Tensor]) -> torch.Tensor:
        return self.spliced_embeds(paired.student_ids, paired.speech_spans, speech_embeds)

    def spliced_embeds(self, ids: torch.Tensor, spans: list[tuple[int, int]],
                       speech_embeds: list[torch.Tensor]) -> torch.Tensor:
        """(T, D) input embeddings of ids with a SPEECH_MARKER per speech frame: each (start, length) span of
        markers holds its (length, D) speech embeddings, every other position its token's embedding."""
        embeds = self.embed_text(ids.clamp(min=0))
        if not speech_embeds:
            return embeds
        pieces, cursor = [], 0
        for (start, length), speech in zip(spans, speech_embeds):
            pieces += [embeds[cursor:start], speech.to(embeds.dtype)]
            cursor = start + length
        pieces.append(embeds[cursor:])
        return torch.cat(pieces)
