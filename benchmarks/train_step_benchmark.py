"""Time one Stage I optimizer step: distillation (α = 1, teacher forward + chunked KL) against plain NLL (α = 0).

Both run side by side in one process on the same batches (order alternated per batch), after warm-up steps, with
the preset's recipe (LLM trainable from step 0, no replay). Prints the median seconds per step of each, their ratio
(target: distillation at most 1.3× NLL), text tokens per second, and peak memory (process RSS; GPU memory too when
training on a GPU, which `accelerate` picks when there is one).

    python benchmarks/train_step_benchmark.py --preset mini
    python benchmarks/train_step_benchmark.py --preset smol --llm-mode lora   # SmolLM2-135M + Whisper-base
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--llm-mode", help="frozen | lora | full (default: the preset's recipe)")
    parser.add_argument("--align", help="none | ctc | ctc-soft (default: the preset's recipe)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per α")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    # Runs go to a throwaway data folder; the cache (world, converted models) stays where it is.
    from salad_core.paths import cache_dir

    os.environ.setdefault("SALAD_CACHE", str(cache_dir("models").parent))
    os.environ["SALAD_DATA"] = tempfile.mkdtemp(prefix="salad-bench-")
    import torch

    from benchmarks.step_timing import compare_alphas
    from salad_core.store import Store
    from salad_core.train.config import TrainConfig
    from salad_core.train.trainer import DistillTrainer

    config = TrainConfig.for_preset(args.preset, llm_mode=args.llm_mode, align=args.align, llm_unfreeze_step=0,
                                    replay_prob=0.0, batch_size=args.batch_size)
    trainer = DistillTrainer(config, Store(Path(os.environ["SALAD_DATA"]) / "bench.duckdb"))
    trainer.setup()
    n = args.warmup + args.steps
    batches = [trainer.data.next_batch(config.batch_size, allow_replay=False) for _ in range(n)]  # frames fetched
    device = trainer.accelerator.device
    timing = compare_alphas(trainer.step_module, trainer.optimizer, batches, args.warmup,
                            backward=trainer.accelerator.backward, cuda=device.type == "cuda")
    result = {"preset": args.preset, "llm_mode": config.llm_mode, "align": config.align,
              "batch_size": config.batch_size, "device": str(device), "threads": torch.get_num_threads(),
              "steps": args.steps, **timing}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.preset} ({config.llm_mode} LLM, align {config.align}, batch {config.batch_size}, {device}, "
          f"{result['threads']} threads), median of {args.steps} steps each:")
    print(f"  distillation (α=1): {result['distill_s_per_step']:.3f} s/step, {result['distill_tokens_per_s']:.0f} text tokens/s")
    print(f"  plain NLL    (α=0): {result['nll_s_per_step']:.3f} s/step, {result['nll_tokens_per_s']:.0f} text tokens/s")
    print(f"  ratio distillation / NLL: {result['ratio']:.2f}x (target <= 1.3x)")
    gpu = f", GPU {result['peak_gpu_mb']:.0f} MB" if result["peak_gpu_mb"] is not None else ""
    print(f"  peak memory: RSS {result['peak_rss_mb']:.0f} MB{gpu}")


if __name__ == "__main__":
    main()
