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

    `student_ids` has -1 where the student hears speech; `speech_spans` lists (start, length) of those runs, filled by
    the adapter's outputs. `student_pred[i]` and `teacher_pred[i]` predict the same text token `targets[i]`.
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
            student.extend([-1] * n)
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
