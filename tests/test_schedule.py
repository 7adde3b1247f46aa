"""Warmup-stable-decay: the shape, the boundaries and the step where decay starts."""

import pytest

from salad_core.schedule import decay_start, lr_factor


def test_warmup_stable_decay_shape():
    f = [lr_factor(s, total_steps=100, warmup_steps=10, decay_fraction=0.2) for s in range(1, 101)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0  # linear warmup to the peak at step 10
    assert all(x == 1.0 for x in f[9:80])  # stable through step 80
    assert decay_start(100, 0.2) == 81
    assert all(a > b for a, b in zip(f[80:], f[81:]))  # strictly decreasing during decay
    assert 0 < f[-1] < 0.1


def test_no_decay_and_no_warmup():
    assert [lr_factor(s, 10, 0, 0.0) for s in (1, 5, 10)] == [1.0, 1.0, 1.0]
    assert decay_start(10, 0.0) == 11


def test_the_decay_ends_one_step_short_of_zero():
    """Over n decay steps the factors are n/(n+1) ... 1/(n+1): the line reaches 0 one step after the last (no step is
    spent at rate 0), as the module says."""
    total, start = 100, decay_start(100, 0.2)
    n = total - start + 1
    factors = [lr_factor(s, total, 10, 0.2) for s in range(start, total + 1)]
    assert n == 20 and factors == pytest.approx([(n - k) / (n + 1) for k in range(n)])
    assert factors[-1] == pytest.approx(1 / (n + 1))
    slope = factors[-2] - factors[-1]
    assert factors[-1] - slope == pytest.approx(0.0)  # the next step on the line would be 0
