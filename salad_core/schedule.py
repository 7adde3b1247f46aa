"""Warmup-stable-decay learning rate (SALAD, "Training": 500 warmup steps, linear decay over the last 20 %): one
schedule for Stage I and II and for pretraining a mini world's LM.

`wsd_factor(step, ...)` multiplies a peak rate: a linear warmup from 0, a flat stable phase, then a linear decay
from `decay_begin` to `decay_end`, on the line that reaches 0 one step after the last: over n decay steps the
factors are n/(n+1), ..., 1/(n+1). A schedule that reached 0 *at* the last step would spend that step changing
nothing. `lr_factor` places the decay over the last `decay_fraction` of a run's steps; the checkpoint taken at
`decay_start` - 1 (the last step before decay) is the one Stage II resumes from. The world's LM decays once it has
learnt what it can (world/lm.py), wherever that falls.
"""

from __future__ import annotations

import math


def decay_start(total_steps: int, decay_fraction: float) -> int:
    """First step of the decay phase (steps are 1-based; the stable phase ends at decay_start - 1)."""
    return total_steps - int(math.floor(total_steps * decay_fraction)) + 1


def wsd_factor(step: int, warmup_steps: int, decay_begin: int, decay_end: int) -> float:
    """Multiplier of the peak rate at step `step` (1-based) of a schedule that decays over decay_begin..decay_end."""
    if step <= warmup_steps:
        return step / max(warmup_steps, 1)
    if step < decay_begin:
        return 1.0
    return max(0.0, (decay_end - step + 1) / (decay_end - decay_begin + 2))


def lr_factor(step: int, total_steps: int, warmup_steps: int, decay_fraction: float) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (1-based) of a run of `total_steps`."""
    return wsd_factor(step, warmup_steps, decay_start(total_steps, decay_fraction), total_steps)
