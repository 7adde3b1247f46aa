"""Warmup-stable-decay learning rate (SALAD, "Training": 500 warmup steps, linear decay over the last 20 %).

`lr_factor(step)` multiplies each parameter group's peak rate: a linear warmup from 0, a flat stable phase, then a
linear decay over the last `decay_fraction` of the steps, on the line that reaches 0 one step after the last: over
n decay steps the factors are n/(n+1), ..., 1/(n+1). A schedule that reached 0 *at* the last step would spend that
step changing nothing. The checkpoint taken at `decay_start` - 1 (the last step before decay) is the one Stage II
resumes from.
"""

from __future__ import annotations

import math


def decay_start(total_steps: int, decay_fraction: float) -> int:
    """First step of the decay phase (steps are 1-based; the stable phase ends at decay_start - 1)."""
    return total_steps - int(math.floor(total_steps * decay_fraction)) + 1


def lr_factor(step: int, total_steps: int, warmup_steps: int, decay_fraction: float) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (1-based)."""
    if step <= warmup_steps:
        return step / max(warmup_steps, 1)
    start = decay_start(total_steps, decay_fraction)
    if step < start:
        return 1.0
    return max(0.0, (total_steps - step + 1) / (total_steps - start + 2))
