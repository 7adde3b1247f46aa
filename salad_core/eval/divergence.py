"""Token-level forgetting F and misalignment M (SALAD, "The problem") on a held-out probe set.

    F = KL( Q(. | text) || P(. | text) )      Q = the original LLM, P = the adapted model
    M = KL( P(. | text) || P(. | speech) )    the same content with its speech spans heard instead of read

Both are averaged over the positions whose next token is text (nats per token). F is taken over every position of
the all-text view; M over the text tokens that both views share (`PairedSequence.teacher_pred/student_pred`).
`d_sum` holds, over the same positions as M, the Stage I distillation loss KL( Q(. | text) || P(. | speech) ): the
other way SALAD's Stage II can score a cluster's misalignment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from salad_core.eval.metrics import Estimate, bootstrap_indices
from salad_core.losses import kl_per_position
from salad_core.model.modeling import SaladModel
from salad_core.model.processing import Segment


@dataclass(frozen=True)
class ProbeDivergence:
    f_sum: float
    f_tokens: int
    m_sum: float
    m_tokens: int
    d_sum: float = 0.0


@torch.no_grad()
def probe_divergence(model: SaladModel, segments: list[Segment], speech_embeds: list | None = None,
                     after_speech: bool = False) -> ProbeDivergence:
    """F and M terms of one probe document; `speech_embeds` when its speech spans come as cached frames. With
    `after_speech`, M (and the distillation loss) only at the positions after the first speech span."""
    paired, student_embeds = model.pair(segments, speech_embeds)
    device = student_embeds.device
    text_ids = paired.teacher_ids[None].to(device)
    all_positions = torch.arange(paired.teacher_ids.numel() - 1, device=device)
    kept = torch.ones_like(paired.student_pred, dtype=torch.bool)
    if after_speech and paired.speech_spans:
        kept = paired.student_pred >= paired.speech_spans[0][0]
    shared = paired.teacher_pred[kept].to(device)
    p_text = model.text_reader(input_ids=text_ids, logits_to_keep=all_positions).logits[0]
    p_speech = model.llm(inputs_embeds=student_embeds[None],
                         logits_to_keep=paired.student_pred[kept].to(device)).logits[0]
    m = kl_per_position(p_text[shared], p_speech)
    if not model.teacher_reads_student_tokens:  # no original LLM, or another vocabulary: F is not defined
        return ProbeDivergence(0.0, 0, float(m.sum()), m.numel())
    if model.student_llm_is_teacher:  # a frozen LLM reads text exactly as the original: F is 0, one pass serves
        q_text = p_text
    else:
        with model.teacher() as teacher:
            q_text = teacher(input_ids=text_ids, logits_to_keep=all_positions).logits[0]
    f = kl_per_position(q_text, p_text)
    d = kl_per_position(q_text[shared], p_speech)
    return ProbeDivergence(float(f.sum()), f.numel(), float(m.sum()), m.numel(), float(d.sum()))


def aggregate(parts: list[ProbeDivergence]) -> dict[str, float]:
    f_tokens = sum(p.f_tokens for p in parts)
    m_tokens = sum(p.m_tokens for p in parts)
    return {
        "F": sum(p.f_sum for p in parts) / f_tokens if f_tokens else float("nan"),
        "M": sum(p.m_sum for p in parts) / m_tokens if m_tokens else float("nan"),
        "f_tokens": f_tokens,
        "m_tokens": m_tokens,
    }


def divergence_estimates(parts: list[ProbeDivergence], seed: int = 0, level: float = 0.95,
                         prefix: str = "") -> dict[str, Estimate]:
    """F and M (token-weighted, as `aggregate`) with bootstrap intervals that resample whole probes (documents or
    items), named `<prefix>F` and `<prefix>M` ("item_" for the item-level measure)."""
    out = {}
    for name, sums, counts in ((prefix + "F", [p.f_sum for p in parts], [p.f_tokens for p in parts]),
                               (prefix + "M", [p.m_sum for p in parts], [p.m_tokens for p in parts])):
        sums_a, counts_a = np.asarray(sums, dtype=float), np.asarray(counts, dtype=float)
        if not parts or counts_a.sum() == 0:
            out[name] = Estimate(float("nan"), float("nan"), float("nan"), int(counts_a.sum()))
            continue
        draws = bootstrap_indices(len(parts), seed=seed)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios = sums_a[draws].sum(axis=1) / counts_a[draws].sum(axis=1)
        tail = (1 - level) / 2 * 100
        low, high = np.nanpercentile(ratios, [tail, 100 - tail])
        out[name] = Estimate(float(sums_a.sum() / counts_a.sum()), float(low), float(high), int(counts_a.sum()))
    return out
