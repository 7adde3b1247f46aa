"""Distillation (α = 1) against plain NLL (α = 0), timed side by side on the same batches: the loop that
train_step_benchmark.py and step_shapes_benchmark.py share."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable


def compare_alphas(step, optimizer, batches: list, warmup: int, backward: Callable | None = None,
                   cuda: bool = False) -> dict:
    """Run each batch at α = 1 and α = 0 (order alternated per batch), one optimizer step each; the first `warmup`
    batches are not timed. `step` is a DistillationStep (or its accelerate wrapper, whose module has `alpha`)."""
    import torch

    module = getattr(step, "module", step)
    backward = backward or (lambda loss: loss.backward())

    def one(batch, alpha: float) -> tuple[float, int]:
        module.alpha = alpha
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = step(batch)
        backward(out["loss"] / max(1, int(out["n"])))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start, int(out["n"])

    times: dict[float, list[float]] = {1.0: [], 0.0: []}
    tokens = {1.0: 0, 0.0: 0}
    for i, batch in enumerate(batches):
        for alpha in ((1.0, 0.0) if i % 2 == 0 else (0.0, 1.0)):
            seconds, n = one(batch, alpha)
            if i >= warmup:
                times[alpha].append(seconds)
                tokens[alpha] += n
    median = {a: statistics.median(t) for a, t in times.items()}
    return {"distill_s_per_step": median[1.0], "nll_s_per_step": median[0.0], "ratio": median[1.0] / median[0.0],
            "distill_tokens_per_s": tokens[1.0] / sum(times[1.0]), "nll_tokens_per_s": tokens[0.0] / sum(times[0.0]),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}
