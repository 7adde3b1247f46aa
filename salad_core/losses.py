"""Divergences between next-token distributions, shared by training (Stage I/II loss) and evaluation (F and M).

`kl_per_position` returns true KL divergences (>= 0, exactly 0 for identical inputs), not the cross-entropy that
some distillation code uses in their place: the dashboard's F and M must be real KLs. Rows are processed in chunks,
upcast to float32 one chunk at a time, so memory does not grow with positions x vocabulary beyond one chunk.
"""

from __future__ import annotations

import torch

from salad_core.options import KL_DIRECTIONS  # noqa: F401  (validated here)


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


def chunked_distillation_terms(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor | None,
    targets: torch.Tensor,
    student_head: torch.nn.Module,
    teacher_head: torch.nn.Module,
    direction: str = "forward",
    temperature: float = 1.0,
    chunk_size: int = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed KL and NLL over N aligned positions, projecting hidden states to the vocabulary one chunk at a time.

    student_hidden (N, D) carries gradients; teacher_hidden (N, D) or None (no KL term, e.g. alpha = 0); targets (N,).
    Each chunk runs under activation checkpointing and the teacher's logits are computed inside it without gradients,
    so autograd keeps only the (chunk, D) hidden states: memory does not grow with N x vocabulary beyond one chunk.
    The KL is multiplied by temperature^2 (Hinton et al.) so its gradients keep their scale across temperatures.
    """
    from torch.utils.checkpoint import checkpoint

    def terms(s_hidden: torch.Tensor, t_hidden: torch.Tensor | None, target: torch.Tensor):
        s_logits = student_head(s_hidden).float()
        nll = torch.nn.functional.cross_entropy(s_logits, target, reduction="sum")
        if t_hidden is None:
            return s_logits.new_zeros(()), nll
        with torch.no_grad():
            t_logits = teacher_head(t_hidden).float()
        kl = distillation_kl(t_logits, s_logits, direction, temperature).sum() * temperature**2
        return kl, nll

    kl_sum = student_hidden.new_zeros((), dtype=torch.float32)
    nll_sum = student_hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, student_hidden.shape[0], chunk_size):
        piece = slice(start, start + chunk_size)
        t_piece = None if teacher_hidden is None else teacher_hidden[piece]
        kl, nll = checkpoint(terms, student_hidden[piece], t_piece, targets[piece], use_reentrant=False)
        kl_sum, nll_sum = kl_sum + kl, nll_sum + nll
    return kl_sum, nll_sum
