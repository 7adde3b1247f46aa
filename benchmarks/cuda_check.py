"""A training step on CUDA gives the CPU's losses: one synthetic batch through a smol-shaped model (random weights,
LoRA), with and without the CTC aid, first on the CPU, then on the GPU. Needs only config and tokenizer files:

    python benchmarks/cuda_check.py --llm-dir .gpu/llm --encoder-dir .gpu/enc

(the folders as for step_shapes_benchmark.py). Prints both losses and their largest relative difference.
"""

from __future__ import annotations

import argparse
import random
import runpy
from pathlib import Path

import torch


def main() -> None:
    bench = runpy.run_path(str(Path(__file__).with_name("step_shapes_benchmark.py")))
    llm_default, encoder_default = bench["default_dirs"]()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm-dir", type=Path, default=llm_default)
    parser.add_argument("--encoder-dir", type=Path, default=encoder_default)
    args = parser.parse_args()
    from salad_core.train.step import DistillationStep

    for align in ("none", "ctc", "ctc-soft"):
        model = bench["build_model"](args.llm_dir, args.encoder_dir, "lora", align).eval()
        batch = bench["synthetic_batch"](random.Random(1), 4, 30, model.encoder.hidden_size)
        step = DistillationStep(model, alpha=0.5)
        with torch.no_grad():
            cpu = {k: float(v) for k, v in step(batch).items()}
            model.to("cuda")
            gpu = {k: float(v) for k, v in step(batch).items()}
        worst = max(abs(cpu[k] - gpu[k]) / max(abs(cpu[k]), 1e-6) for k in cpu)
        print(f"align {align}: cpu {cpu}; cuda {gpu}; largest relative difference {worst:.2e}")


if __name__ == "__main__":
    main()
