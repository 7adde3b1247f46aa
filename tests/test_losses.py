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
