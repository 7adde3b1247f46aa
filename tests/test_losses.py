"""True KL divergences: zero for identical distributions, chunking changes nothing, a hand-computed case."""

import math

import pytest
import torch

from salad_core.losses import distillation_kl, kl_per_position


def test_kl_of_a_distribution_with_itself_is_zero():
    logits = torch.randn(7, 50)
    assert kl_per_position(logits, logits).abs().max() < 1e-6


def test_chunked_equals_unchunked():
    p, q = torch.randn(37, 20), torch.randn(37, 20)
    assert torch.allclose(kl_per_position(p, q, chunk_size=5), kl_per_position(p, q, chunk_size=1000), atol=1e-6)


def test_hand_computed_two_outcome_case():
    p = torch.log(torch.tensor([[0.5, 0.5]]))
    q = torch.log(torch.tensor([[0.9, 0.1]]))
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert kl_per_position(p, q).item() == pytest.approx(expected, rel=1e-5)


def test_zero_probability_in_p_contributes_nothing():
    p = torch.tensor([[0.0, -float("inf")]])
    q = torch.tensor([[0.0, 0.0]])
    assert kl_per_position(p, q).item() == pytest.approx(math.log(2), rel=1e-5)


def test_direction_and_temperature():
    t, s = torch.randn(4, 9), torch.randn(4, 9)
    assert torch.allclose(distillation_kl(t, s, "forward"), kl_per_position(t, s))
    assert torch.allclose(distillation_kl(t, s, "reverse"), kl_per_position(s, t))
    assert torch.allclose(distillation_kl(t, s, temperature=2.0), kl_per_position(t / 2, s / 2), atol=1e-6)
    with pytest.raises(ValueError, match="direction"):
        distillation_kl(t, s, "sideways")


def test_chunked_distillation_terms_match_the_direct_computation_and_gradients():
    from salad_core.losses import chunked_distillation_terms

    torch.manual_seed(0)
    head = torch.nn.Linear(8, 30, bias=False)
    student = torch.randn(25, 8, requires_grad=True)
    teacher = torch.randn(25, 8)
    targets = torch.randint(0, 30, (25,))
    kl, nll = chunked_distillation_terms(student, teacher, targets, head, head, temperature=2.0, chunk_size=7)
    (kl + nll).backward()
    grad_chunked = student.grad.clone()
    student.grad = None
    s_logits, t_logits = head(student), head(teacher).detach()
    kl_ref = kl_per_position(t_logits / 2, s_logits / 2).sum() * 4
    nll_ref = torch.nn.functional.cross_entropy(s_logits, targets, reduction="sum")
    (kl_ref + nll_ref).backward()
    assert kl.item() == pytest.approx(kl_ref.item(), rel=1e-5) and nll.item() == pytest.approx(nll_ref.item(), rel=1e-5)
    assert torch.allclose(grad_chunked, student.grad, atol=1e-5)


def test_no_teacher_means_no_kl_term():
    from salad_core.losses import chunked_distillation_terms

    head = torch.nn.Linear(4, 6)
    kl, nll = chunked_distillation_terms(torch.randn(3, 4), None, torch.tensor([0, 1, 2]), head, head)
    assert kl.item() == 0.0 and nll.item() > 0
