"""The mini world's tiny causal LM: a word-level tokenizer and pretraining from scratch on the world's text.

The LM is a small `transformers` Llama (hidden 192, 3 layers, 4 heads, tied embeddings; ~1.5M parameters with a
few-hundred-word vocabulary), a size that learns a multi-domain fact world in a
few hundred CPU steps. It is trained on `world.text_corpus()` plus the world's few-shot items written in the
evaluation template, so that it reads `salad eval`'s prompts ("Question: …\\nAnswer: …") as it will be tested.

Tokenizer: lower-cased words and punctuation marks are tokens (`"Answer:"` -> `answer`, `:`); newlines are
whitespace, so the eval prompt reads as the world corpus writes question/answer pairs (`question : … ? answer : …`).
No special tokens are added on encoding (the scorer and the trainer tokenize with `add_special_tokens=False`; here
both settings give the same ids), and a word continuation `" paris"` is the single id of `paris`. Documents end in
`<eos>`; training rows pack whole documents from their first token, as an evaluation prompt starts.

Pretraining checks the LM's dev accuracy and decides when to decay by world/lm_stopping.py. The LM of a world lives in
`world.root / LM_FOLDER`, trained once and reused (`ensure_world_lm`); `resolve_world_llm("world:mini")` maps the
loader's name to that folder.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from salad_core.assets import AssetError
from salad_core.eval.lanes import FEWSHOT_TEMPLATE, QUESTION_TEMPLATE, prompt_segments
from salad_core.eval.vocabulary import HEADLINE_SCORING, K_SHOT
from salad_core.model.names import LLMName, parse_llm_name
from salad_core.model.processing import tokenize_segment
from salad_core.progress import Progress
from salad_core.schedule import wsd_factor
from salad_core.world.build import load_world
from salad_core.world.lm_recipes import LM_FOLDER, LM_RECIPES, PRESET_PRETRAINING
from salad_core.world.lm_stopping import (
    check_stop_rule,
    fewshot_examples,
    ready_to_decay,
    target_reached,
    text_accuracy,
    world_task,
)
from salad_core.world.tokenizer import build_tokenizer

REPORT_FILE = "lm_report.json"


def _template_texts() -> list[str]:
    """The words of the evaluation template itself ("question", ":", "answer")."""
    return [FEWSHOT_TEMPLATE.format(question="", answer=""), QUESTION_TEMPLATE.format(question="")]


# -- the world's items and documents ---------------------------------------------------------------------------


def format_documents(world) -> list[str]:
    """Each domain's few-shot items written in the evaluation template, one document per domain.

    This teaches the answer format only: the items come from the few-shot pool, disjoint from dev and test.
    """
    docs = []
    for domain in world.domains:
        pool = world.task_items(domain.name, "fewshot")
        if pool:
            docs.append("".join(FEWSHOT_TEMPLATE.format(question=e.question, answer=e.target) for e in pool).strip())
    return docs


def tokenizer_texts(world) -> list[str]:
    """Everything the LM must read: corpus, probe and speech documents, every item's question and choices, and the
    evaluation template's words."""
    texts = [*world.text_corpus(), *world.probe_docs(), *(doc.text for doc in world.speech_docs()), *_template_texts()]
    for domain in world.domains:
        for split in ("dev", "test", "fewshot"):
            for item in world.task_items(domain.name, split):
                texts.extend([item.question, *item.choices])
    return texts


# -- training --------------------------------------------------------------------------------------------------


def model_config(tokenizer, max_positions: int, *, hidden: int = 192, layers: int = 3, heads: int = 4) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_positions,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def encode_documents(tokenizer, docs: list[str]) -> list[list[int]]:
    """Token ids of each non-empty document, ending in `<eos>`."""
    encoded = [tokenizer(doc, add_special_tokens=False).input_ids for doc in docs]
    return [ids + [tokenizer.eos_token_id] for ids in encoded if ids]


def pack_rows(groups: list[list[list[int]]], n_rows: int, length: int, rng: np.random.Generator,
              weights: list[float] | None = None) -> torch.Tensor:
    """(n_rows, length) ids: each row is whole documents back to back from their start, cut at `length`.

    Each document is drawn by picking a group (a domain), uniformly or in proportion to `weights` (one per group),
    then a document of it uniformly: a domain with a large corpus (the stories) would otherwise crowd out the facts
    the LM must learn.
    """
    weights = [1.0] * len(groups) if weights is None else weights
    if len(weights) != len(groups) or min(weights) < 0:
        raise ValueError(f"pack_rows needs one weight >= 0 per group; got {weights} for {len(groups)} groups")
    kept = [(g, w) for g, w in zip(groups, weights) if g and w > 0]
    groups = [g for g, _ in kept]
    uniform = len({w for _, w in kept}) == 1  # equal weights draw as they always did, so the LM stays reproducible
    p = np.array([w for _, w in kept]) / sum(w for _, w in kept)
    rows = np.empty((n_rows, length), dtype=np.int64)
    for r in range(n_rows):
        row: list[int] = []
        while len(row) < length:
            group = groups[rng.integers(len(groups)) if uniform else rng.choice(len(groups), p=p)]
            row.extend(group[rng.integers(len(group))])
        rows[r] = row[:length]
    return torch.from_numpy(rows)


def _longest_prompt(tokenizer, world, k_shot: int) -> int:
    longest = 0
    for domain in world.domains:
        task = world_task(world, domain.name)
        fewshot = fewshot_examples(task, k_shot)
        for item in task.items("dev") + task.items("test"):
            text = "".join(s.text for s in prompt_segments(fewshot, item.question))
            longest = max(longest, len(tokenize_segment(tokenizer, text)) + max(len(tokenize_segment(tokenizer, " " + c)) for c in item.choices))
    return longest


def pretrain_world_lm(world, out_dir: str | Path, *, steps: int = 1500, batch_size: int = 32, lr: float = 3e-3,
                      seed: int = 0, target: float = 0.9, eval_every: int = 100, decay_steps: int | None = None,
                      until: str = "plateau", patience: int = 2, min_gain: float = 0.02, k_shot: int = K_SHOT,
                      row_length: int | None = None, hidden: int = 192, layers: int = 3, heads: int = 4,
                      domain_weights: dict[str, float] | None = None, threads: int = 1,
                      tokenizer: str = "word", vocab_size: int | None = None, stop_scoring: str = HEADLINE_SCORING,
                      progress: bool = True) -> dict:
    """Train the world's LM from scratch and save model + tokenizer (`save_pretrained`) into `out_dir`.

    The training package's warmup-stable-decay schedule (salad_core/schedule.py): once `ready_to_decay` says so
    (`until`: the fact domains reach `target`, or that and the mean dev accuracy stops rising; checked every
    `eval_every` steps), the LR decays linearly over `decay_steps` (default 10% of `steps`, at least 50) and training
    ends; otherwise it decays over the last `decay_steps` of `steps`; the dev checks pick each answer by
    `stop_scoring` (the headline scoring; the v4 recipes' "acc", as they were made). `tokenizer` is "word" or "bpe"
    (with `vocab_size`; world/tokenizer.py). Training
    rows hold `row_length` tokens (default: the longest k-shot eval prompt, at least 128). `domain_weights` draws the
    named domains' documents that many times as often as the others' (weight 1; unnamed: 1). `threads` sets torch's CPU
    threads for the whole run: one by default, so that a world gives the same LM on any machine and whatever runs
    beside it (a count that changed mid-run, at a step that depended on when the build's speech was done, changed the
    float sums and with them the step at which the mini LM decayed: 1,401 and 1,701 in two builds; one thread costs
    a third more time per step when the other core is free). Returns the report also written to
    `out_dir/lm_report.json`.
    """
    if steps < 1 or batch_size < 1 or eval_every < 1:
        raise ValueError(f"steps, batch_size and eval_every must be >= 1; got {steps}, {batch_size}, {eval_every}")
    check_stop_rule(until)  # before any training
    unknown = set(domain_weights or {}) - {d.name for d in world.domains}
    if unknown:
        raise ValueError(f"domain_weights names {sorted(unknown)}, not domains of world {world.name!r} "
                         f"({', '.join(d.name for d in world.domains)})")
    stop = {"until": until, "patience": patience, "min_gain": min_gain}
    previous_threads = torch.get_num_threads()
    # Its own RNG stream: a caller that seeded torch before the LM was first needed (an untrained adapter built on
    # the world's LM) gets the same weights whether or not the LM had to be trained first.
    try:
        with torch.random.fork_rng():
            return _pretrain(world, Path(out_dir), steps, batch_size, lr, seed, target, stop, stop_scoring, eval_every,
                             decay_steps, k_shot, row_length, (hidden, layers, heads), domain_weights or {},
                             (tokenizer, vocab_size), threads, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _pretrain(world, out_dir: Path, steps, batch_size, lr, seed, target, stop, scoring, eval_every, decay_steps, k_shot,
              row_length, shape, domain_weights, tokenizer_kind, threads, progress) -> dict:
    torch.set_flush_denormal(True)  # denormals slow CPU training 5-10x after a few dozen updates
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    tokenizer = build_tokenizer(tokenizer_texts(world), *tokenizer_kind)
    groups = [encode_documents(tokenizer, world.text_corpus(d.name)) for d in world.domains]
    groups.append(encode_documents(tokenizer, format_documents(world)))
    weights = [float(domain_weights.get(d.name, 1.0)) for d in world.domains] + [1.0]  # the format documents: 1
    if not any(groups):
        raise AssetError(f"World {world.name!r} has an empty text corpus. Fix: rebuild it (`salad world build --force`).")
    row_length = row_length or max(128, 32 * math.ceil(_longest_prompt(tokenizer, world, k_shot) / 32))
    hidden, layers, heads = shape
    llm = LlamaForCausalLM(model_config(tokenizer, 2 * row_length, hidden=hidden, layers=layers, heads=heads))
    optimizer = torch.optim.AdamW(llm.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup, decay_steps = min(50, steps // 10 + 1), decay_steps or max(50, steps // 10)
    decay_begin = max(steps - decay_steps + 1, warmup + 1)  # moved earlier once the LM is ready to decay
    history, losses, step, accuracy = [], [], 0, {}
    bar = Progress(steps, f"pretraining {world.name} LM") if progress else None
    llm.train()
    while step < min(decay_begin + decay_steps - 1, steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * wsd_factor(step + 1, warmup, decay_begin, decay_begin + decay_steps - 1)
        batch = pack_rows(groups, batch_size, row_length, rng, weights)
        loss = llm(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(llm.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        step += 1
        if bar is not None:
            bar.update()
        if step % eval_every == 0 and step < decay_begin:
            accuracy = text_accuracy(llm, tokenizer, world, "dev", k_shot, scoring=scoring)
            if bar is not None:
                bar.update(0, message="dev accuracy " + ", ".join(f"{d} {a:.2f}" for d, a in accuracy.items()))
            history.append({"step": step, "loss": float(np.mean(losses[-eval_every:])), "dev_accuracy": accuracy})
            if ready_to_decay(history, world, target, **stop):
                decay_begin = min(decay_begin, step + 1)
    if bar is not None:
        bar.close()
    train_s = time.perf_counter() - started
    llm.eval()
    report = {
        "world": world.name, "steps": step, "batch_size": batch_size, "row_length": row_length, "lr": lr, "seed": seed,
        "k_shot": k_shot, "target": target, **stop, "stop_scoring": scoring, "domain_weights": domain_weights,
        "decay_start": decay_begin, "tokenizer": tokenizer_kind[0], "vocab_size": len(tokenizer),
        "hidden": hidden, "layers": layers, "threads": threads,
        "parameters": sum(p.numel() for p in llm.parameters()), "train_s": round(train_s, 2),
        "final_loss": float(np.mean(losses[-min(20, len(losses)):])), "history": history,
        "dev_accuracy": text_accuracy(llm, tokenizer, world, "dev", k_shot, scoring=scoring),
        "test_accuracy": text_accuracy(llm, tokenizer, world, "test", k_shot, scoring=scoring),
        "kinds": {d.name: d.kind for d in world.domains},
    }
    report["target_reached"] = target_reached(report["dev_accuracy"], world, target)
    report["wall_s"] = round(time.perf_counter() - started, 2)
    _save(llm, tokenizer, report, out_dir)
    return report


def _save(llm, tokenizer, report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    llm.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=1))


# -- the world's LM folder -------------------------------------------------------------------------------------


def world_lm_dir(world, recipe: str = LM_FOLDER) -> Path:
    return Path(world.root) / recipe


def lm_report(world, recipe: str = LM_FOLDER) -> dict | None:
    """The training report of the world's LM of one recipe, or None when it is not trained yet."""
    path = world_lm_dir(world, recipe) / REPORT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def ensure_world_lm(world, recipe: str = LM_FOLDER, **train_kwargs) -> Path:
    """The folder of the world's LM of `recipe` (LM_RECIPES), trained on first use (into a temporary folder, renamed
    when complete)."""
    if recipe not in LM_RECIPES:
        raise AssetError(f"Unknown LM recipe {recipe!r}. Fix: use one of {', '.join(LM_RECIPES)}.")
    train_kwargs = {**PRESET_PRETRAINING.get(world.name, {}), **LM_RECIPES[recipe], **train_kwargs}
    final = world_lm_dir(world, recipe)
    if (final / REPORT_FILE).is_file():
        return final
    tmp = final.with_name(f".{recipe}-{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        pretrain_world_lm(world, tmp, **train_kwargs)
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished first: keep its LM
            if not (final / REPORT_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def resolve_world_llm(name: str | LLMName) -> Path | None:
    """`world:<preset>` -> the folder of that world's LM of today's recipe (trained now if needed);
    `world:<preset>/<folder>` -> that recipe's LM (trained now if it is a recipe of LM_RECIPES; an earlier version's
    folder must already exist); None for any other name.

    The world itself must be built: `load_world` raises an error naming `salad world build --corpus <preset>`.
    """
    parsed = name if isinstance(name, LLMName) else parse_llm_name(name)
    if not parsed.is_world:
        return None
    world = load_world(parsed.world)
    recipe = parsed.lm_folder or LM_FOLDER
    if recipe in LM_RECIPES:
        return ensure_world_lm(world, recipe)
    path = Path(world.root) / recipe
    if not (path / REPORT_FILE).is_file():
        raise AssetError(f"LLM name {parsed.text!r}: world {parsed.world!r} holds no trained LM {recipe!r} (today's "
                         f"recipes are {', '.join(LM_RECIPES)}, and the world was built by today's code in "
                         f"{world.root}). Fix: use world:{parsed.world} for today's LM, or the salad version that "
                         f"built that world and trained {recipe!r} to read that model.")
    return path


if __name__ == "__main__":  # `python -m salad_core.world.lm FOLDER`: the world build pretrains the LM beside the speech
    import sys

    from salad_core.world.world import World

    # its bar goes to the build's log, its state to the file the build follows ($SALAD_PROGRESS_FILE)
    ensure_world_lm(World(Path(sys.argv[1])))
