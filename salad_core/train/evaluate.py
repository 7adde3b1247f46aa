"""Periodic evaluation during training, on a fixed dev slice of every world task: the dynamics curves.

Per task: text accuracy of the original LLM and of the student, speech accuracy of the student (questions in the
world's evaluation voices, never heard in training, from cached encoder frames), gap / forgetting / misalignment,
the corpus F and M on the task's domain of the world's held-out probe documents (eval/probes.py), and item_F /
item_M on the same dev items (question heard, answer read). The loop, lanes, prompts and metrics are those of
`salad eval` (eval/evaluate.py), so a curve point and an evaluation run mean the same thing, item by item.

After the last step, `final_evaluation` runs `salad eval` itself on the final model: every item of the final split.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from salad_core.eval.config import EvalConfig
from salad_core.eval.divergence import divergence_estimates
from salad_core.eval.evaluate import MemorySink, Sink, evaluate, item_divergences
from salad_core.eval.lanes import PreparedItem, fewshot_for
from salad_core.eval.metrics import metric_rows, task_metrics
from salad_core.eval.probes import corpus_divergence
from salad_core.eval.runner import run_eval
from salad_core.eval.vocabulary import ALL_TASKS, HEADLINE_SCORING, K_SHOT
from salad_core.runs import FINAL
from salad_core.store import Store
from salad_core.train.config import TrainConfig
from salad_core.world import preset_world
from salad_core.world.lm_stopping import world_task

TRAIN_EVAL_LANES = ["base_text", "text", "speech"]


@torch.no_grad()
def evaluate_world(model, world, n_items: int, seed: int = 0, k_shot: int = K_SHOT, scoring: str = HEADLINE_SCORING,
                   on_task: Callable[[str], None] | None = None, sink: Sink | None = None) -> list[dict]:
    """Metric rows (task, metric, value, ci_low, ci_high, n) for every world task and for all tasks pooled, from
    the evaluation loop (eval/evaluate.py) on each task's first `n_items` dev items (in the task's order, as
    `salad eval --split dev --limit` takes them), heard from their cached frames;
    the items' rows go to `sink` (default: kept in memory and dropped). `on_task(task)` is called as each task
    starts (the trainer shows it as its progress message)."""
    sink = sink if sink is not None else MemorySink()
    rows, all_outputs, all_probes = [], [], []
    for domain in world.domains:
        if on_task is not None:
            on_task(domain.task)
        items = world_task(world, domain.name).items("dev", n_items)  # the items `salad eval --limit` takes
        clips = [world.eval_clip(item.item_id) for item in items]
        prepared = [PreparedItem(item, item.item_id, None, clip, frames)
                    for item, clip, frames in zip(items, clips, world.features(clips, model.encoder))]
        outputs = evaluate(model, prepared, TRAIN_EVAL_LANES, scoring, sink,
                           fewshot=lambda task: fewshot_for(task, k_shot, seed, []))
        probes = item_divergences(model, prepared)
        rows += metric_rows(domain.task, {**task_metrics(outputs, scoring, seed),
                                          **divergence_estimates(probes, seed, prefix="item_")})
        all_outputs += outputs
        all_probes += probes
    if on_task is not None:
        on_task("corpus F and M")
    probe_set = world.probe_set()
    corpus = corpus_divergence(model, probe_set, seed)
    rows += [r for domain, est in corpus.items() if domain in probe_set.tasks
             for r in metric_rows(probe_set.tasks[domain], est)]
    return rows + metric_rows(ALL_TASKS, {**task_metrics(all_outputs, scoring, seed), **corpus[ALL_TASKS],
                                          **divergence_estimates(all_probes, seed, prefix="item_")})


def final_evaluation(run_dir: str | Path, config: TrainConfig, store: Store) -> dict:
    """`salad eval` of a run's final model on every item of its `final_split` (test, or dev while a recipe is
    chosen) of the world's tasks, each question as the world spoke it (held-out voices, cached frames); for a preset
    that trains on the broad corpus, the built-in tasks in `salad eval`'s voice. The ASR cascade and the no-audio
    lane are left out here: `salad eval` adds them."""
    world = preset_world(config.preset)
    eval_config = EvalConfig(preset=config.preset, model_path=str(Path(run_dir) / FINAL),
                             tasks=[d.task for d in world.domains], voice=world.eval_voice,
                             seed=config.seed,
                             lanes=list(TRAIN_EVAL_LANES), split=config.final_split)
    return run_eval(eval_config, store)
