"""Evaluation throughput of the batched option scorer against a per-option loop, on the same items.

    python benchmarks/scoring_benchmark.py [--tasks capitals,elements,arithmetic] [--limit 10] [--json]

For each item the text lane (original LLM reading the question) and the speech lane (adapted model hearing it) are
scored twice: with `score_options` (context once, its few-shot prefix cached per task, all options in one batched
pass) and with `score_options_loop` (one full forward per option). Both give the same scores (checked); the script
prints items/s of each and the speed-up. Model: the offline `smol` preset, 5-shot prompts as `salad eval` builds them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from salad_core.eval.config import EvalConfig
from salad_core.eval.lanes import LaneScorer, PreparedItem, fewshot_for, prompt_segments
from salad_core.eval.runner import build_model, speak
from salad_core.eval.scoring import option_token_ids, score_options_loop
from salad_core.eval.vocabulary import LANE_TABLE
from salad_core.tasks import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="capitals,elements,arithmetic")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    config = EvalConfig(tasks=args.tasks.split(","), limit=args.limit)
    model = build_model(config)
    batched = LaneScorer(model)
    work = []
    for task in config.tasks:
        items = get_task(task).items("test", limit=args.limit)
        spoken = speak(items, config.voice)
        fewshot = fewshot_for(task, config.k_shot, config.seed, [])
        work += [(PreparedItem(i, i.item_id, spoken[i.item_id][0], ""), fewshot) for i in items]

    timings = {"batched": {"text": 0.0, "speech": 0.0}, "loop": {"text": 0.0, "speech": 0.0}}
    max_diff = 0.0
    for prepared, fewshot in work:
        item = prepared.item
        options = option_token_ids(model.tokenizer, list(item.choices))
        for lane in ("text", "speech"):
            scorer_lane = LANE_TABLE["base_text" if lane == "text" else "speech"]
            start = time.perf_counter()
            fast = batched.options(scorer_lane, prepared, fewshot)
            timings["batched"][lane] += time.perf_counter() - start

            start = time.perf_counter()
            audio = prepared.audio if lane == "speech" else None
            paired, embeds = model.pair(prompt_segments(fewshot, item.question, audio))
            context = embeds if lane == "speech" else model.embed_text(paired.teacher_ids)
            slow = score_options_loop(model.llm, context.detach(), options)
            timings["loop"][lane] += time.perf_counter() - start
            max_diff = max(max_diff, *(abs(a.logprob - b.logprob) for a, b in zip(fast, slow)))

    n = len(work)
    result = {
        "items": n,
        "options_per_item": 4,
        "k_shot": config.k_shot,
        "threads": torch.get_num_threads(),
        "items_per_s": {mode: {lane: n / t for lane, t in lanes.items()} for mode, lanes in timings.items()},
        "speedup": {lane: timings["loop"][lane] / timings["batched"][lane] for lane in ("text", "speech")},
        "max_logprob_difference": max_diff,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{n} items x 4 options, {config.k_shot}-shot, smol preset, {result['threads']} threads", file=sys.stderr)
    print(f"{'lane':<8}{'batched items/s':>18}{'loop items/s':>15}{'speed-up':>10}")
    for lane in ("text", "speech"):
        ips = result["items_per_s"]
        print(f"{lane:<8}{ips['batched'][lane]:>18.2f}{ips['loop'][lane]:>15.2f}{result['speedup'][lane]:>9.1f}x")
    print(f"max |logprob difference| between the two scorers: {max_diff:.2e}")


if __name__ == "__main__":
    main()
