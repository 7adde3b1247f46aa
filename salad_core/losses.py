"""Divergences between next-token distributions, shared by training (Stage I/II loss) and evaluation (F and M).

`kl_per_position` returns true KL divergences (>= 0, exactly 0 for identical inputs), not the cross-entropy that
some distillation code uses in their place: the dashboard's F and M must be real KLs. Rows are processed in chunks,
upcast to float32 one chunk at a time, so memory does not grow with positions x vocabulary beyond one chunk.
"""

from __future__ import annotations

import torch

KL_DIRECTIONS = ("forward", "reverse")


def kl_per_position(
    p_logits: torch.Tensor, q_logits: torch.Tensor, temperature: float = 1.0, chunk_size: int = 256
) -> torch.Tensor:
    """KL(softmax(p / tau) || softmax(q / tau)) for each row: (N, V), (N, V) -> (N,) in nats."""
    if p_logits.shape != q_logits.shape:
        raise ValueError(f"logit shapes differ: {tuple(p_logits.shape)} vs {tuple(q_logits.shape)}")
    out = []
    for start in range(0, p_logits.shape[0], chunk_size):
        p_log = (p_logits[start : start + chunk_size].float() / temperature).log_softmax(-1)
        q_log = (q_logits[start : start + chunk_size].float() / temperature).log_softmax(-1)
        # p * (log p - log q), with 0 * log 0 = 0 where p underflows
        out.append(torch.where(p_log.isneginf(), 0.0, p_log.exp() * (p_log - q_log)).sum(-1))
    return torch.cat(out) if out else p_logits.new_zeros(0, dtype=torch.float32)


def distillation_kl(
    teacher_logits: torch.Tensor, student_logits: torch.Tensor, direction: str = "forward", temperature: float = 1.0
) -> torch.Tensor:
    """Per-position KL between teacher and student; forward = KL(teacher || student), as SALAD assumes."""
    if direction not in KL_DIRECTIONS:
        raise ValueError(f"KL direction must be one of {KL_DIRECTIONS}, got {direction!r}")
    if direction == "forward":
        return kl_per_position(teacher_logits, student_logits, temperature)
    return kl_per_position(student_logits, teacher_logits, temperature)
