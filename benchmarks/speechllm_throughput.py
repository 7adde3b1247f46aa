"""Items per second of `salad eval --speech-llm` for every supported family, with the tiny random-weight models the
tests build (two layers, width 32), on the same spoken items side by side: log-likelihood scoring of every lane that
needs no ASR (text, speech, no audio, and the text LLM where the family has one), then generative scoring of the same
lanes. What it measures is salad's own cost per item around the model (prompt framing, the audio front end, option
batching, decoding); a real model's time is its forward passes (docs/diagnose-your-model.md).

    python benchmarks/speechllm_throughput.py             # 12 items per family, about a minute on 2 cores
    python benchmarks/speechllm_throughput.py --items 40
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from salad_core.eval.lanes import LaneScorer, PreparedItem  # noqa: E402
from salad_core.speechllm.families import FAMILY_CLASSES, get_family  # noqa: E402
from salad_core.speechllm.model import load_speech_llm  # noqa: E402
from salad_core.tasks import Item  # noqa: E402


def spoken_items(n: int, seed: int = 0) -> list[PreparedItem]:
    """`n` four-option items, each heard as 1.5-4 s of tones and noise (the models are random: content is moot)."""
    rng = np.random.default_rng(seed)
    out = []
    for j in range(n):
        t = np.arange(int(16000 * rng.uniform(1.5, 4.0))) / 16000
        audio = (0.3 * np.sin(2 * np.pi * rng.uniform(150, 400) * t) + 0.02 * rng.standard_normal(t.size))
        item = Item("bench", str(j), "test", f"Which of these is number {j}?", ("red", "green", "blue", "yellow"),
                    j % 4, "general")
        out.append(PreparedItem(item, str(j), audio.astype(np.float32), f"a{j}"))
    return out


def rate(work, items: list[PreparedItem]) -> float:
    work(items[0])  # warm-up: first-call costs (kernels, caches) are not per item
    started = time.perf_counter()
    for p in items:
        work(p)
    return len(items) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    args = parser.parse_args()
    torch.manual_seed(0)
    items = spoken_items(args.items)
    print(f"{args.items} spoken items, 4 options, k=0; {torch.get_num_threads()} threads, "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}")
    print(f"{'family':<17} {'lanes':<32} {'loglik items/s':>15} {'generate items/s':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in FAMILY_CLASSES:
            model = load_speech_llm(str(get_family(name).tiny(Path(tmp) / name.replace(".", "_"))))
            lanes = ["text", "speech", "noaudio"] + (["base_text"] if model.base is not None else [])
            scorer = LaneScorer(model, None, args.max_new_tokens)
            with torch.no_grad():
                loglik = rate(lambda p: scorer.rows(p, [], lanes, "acc_norm"), items)
                generate = rate(lambda p: scorer.rows(p, [], lanes, "generate"), items)
            print(f"{name:<17} {','.join(lanes):<32} {loglik:>15.2f} {generate:>17.2f}")


if __name__ == "__main__":
    main()
