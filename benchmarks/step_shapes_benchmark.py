"""Distillation vs plain NLL step time for a model of a real preset's *shapes*, with random weights and synthetic
interleaved batches. It needs only the LLM's config.json + tokenizer files and the encoder's config.json, so it runs
on machines that have none of the offline assets (a lent GPU machine, say); timings do not depend on the weights.

    python benchmarks/step_shapes_benchmark.py                      # smol shapes (SmolLM2-135M + Whisper-base)
    python benchmarks/step_shapes_benchmark.py --llm-mode lora --batch-size 32 --device cuda

Each batch: `--batch-size` documents of `--words` words in spans of 2-6 words that alternate text and speech; a
speech span carries random encoder frames (50 per second, 0.35 s per word). α = 1 and α = 0 run on the same
batches, order alternated, after warm-up. Prints seconds per step, text tokens per second, the ratio, peak memory.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

WORDS = ("the capital of france is paris and the capital of spain is madrid while seven plus five is twelve a cat "
         "is a mammal with four legs that lives on land and the first month of the year is january").split()


def default_dirs() -> tuple[Path | None, Path | None]:
    from salad_core.paths import cache_dir

    llm = sorted(cache_dir("models").glob("HuggingFaceTB--SmolLM2-135M-Instruct-*"))
    encoder = sorted(cache_dir("encoders").glob("openai--whisper-base-*"))
    return (llm[-1] if llm else None), (encoder[-1] if encoder else None)


def build_model(llm_dir: Path, encoder_dir: Path, llm_mode: str, align: str):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from salad_core.model.config import SaladConfig
    from salad_core.model.encoder import SpeechEncoder
    from salad_core.model.modeling import SaladModel
    from salad_core.train.config import ALIGN_MODEL

    torch.manual_seed(0)
    llm = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(llm_dir))
    tokenizer = AutoTokenizer.from_pretrained(llm_dir)
    encoder = SpeechEncoder(WhisperEncoder(WhisperConfig.from_pretrained(encoder_dir)), name=str(encoder_dir))
    config = SaladConfig(llm_name=str(llm_dir), encoder_name=str(encoder_dir), llm_mode=llm_mode, **ALIGN_MODEL[align])
    return SaladModel(config, encoder=encoder, llm=llm, tokenizer=tokenizer)


def synthetic_batch(rng: random.Random, n_docs: int, n_words: int, channels: int):
    import torch

    from salad_core.model.processing import Segment
    from salad_core.train.step import Batch

    docs, frames = [], []
    for _ in range(n_docs):
        segments, spoken, left = [], rng.random() < 0.5, n_words
        while left > 0:
            size = min(left, rng.randint(2, 6))
            text = (" " if segments else "") + " ".join(rng.choice(WORDS) for _ in range(size))
            if spoken:
                segments.append(Segment(text, clip_id=f"c{len(frames)}"))
                frames.append(torch.randn(round(size * 0.35 * 50), channels))
            else:
                segments.append(Segment(text))
            spoken, left = not spoken, left - size
        docs.append(segments)
    return Batch(docs=docs, frames=frames)


def main() -> None:
    llm_default, encoder_default = default_dirs()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm-dir", type=Path, default=llm_default, help="folder with the LLM's config + tokenizer")
    parser.add_argument("--encoder-dir", type=Path, default=encoder_default, help="folder with a Whisper config")
    parser.add_argument("--llm-mode", default="frozen", choices=("frozen", "lora"))
    parser.add_argument("--align", default="none", choices=("none", "ctc", "ctc-soft"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--words", type=int, default=40, help="words per document")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.llm_dir is None or args.encoder_dir is None:
        raise SystemExit("No LLM or encoder folder. Fix: pass --llm-dir and --encoder-dir (config + tokenizer files).")
    import torch

    from benchmarks.step_timing import compare_alphas
    from salad_core.train.step import DistillationStep

    torch.set_flush_denormal(True)
    model = build_model(args.llm_dir, args.encoder_dir, args.llm_mode, args.align)
    model.to(device=args.device, dtype=getattr(torch, args.dtype))
    model.encoder.eval()
    step = DistillationStep(model, alpha=1.0)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    rng = random.Random(0)
    batches = [synthetic_batch(rng, args.batch_size, args.words, model.encoder.hidden_size)
               for _ in range(args.warmup + args.steps)]
    timing = compare_alphas(step, optimizer, batches, args.warmup, cuda=args.device.startswith("cuda"))
    result = {"llm": args.llm_dir.name, "encoder": args.encoder_dir.name, "llm_mode": args.llm_mode,
              "align": args.align, "batch_size": args.batch_size, "words": args.words, "device": args.device,
              "dtype": args.dtype, "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
              **timing}
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
