"""How the world's LM is scored while it pretrains, and when it has learnt what it can (the stopping rule).

"Text accuracy" is measured by the evaluation loop itself (eval/evaluate.py) on the lane where the original LLM reads
the question: the lanes' prompt with k few-shot examples chosen as the task registry chooses them, options scored by
`score_options`, the answer picked by the headline scoring (acc_norm: log-likelihood per character), so the stopping
rule, the training curves and `salad eval` agree on every item (tests/test_one_evaluation.py).
"""

from __future__ import annotations

import numpy as np

from salad_core.assets import AssetError
from salad_core.eval.evaluate import MemorySink, evaluate
from salad_core.eval.lanes import PreparedItem
from salad_core.eval.metrics import correct_column
from salad_core.eval.model import TextLLM
from salad_core.eval.vocabulary import HEADLINE_SCORING, K_SHOT
from salad_core.tasks import Item
from salad_core.tasks.registry import Task, TaskSpec


def world_task(world, domain: str) -> Task:
    """The world domain's items as a registry `Task`: the same split order and few-shot choice as `salad eval`."""
    task_name = next(d.task for d in world.domains if d.name == domain)
    items = [item for split in ("dev", "test", "fewshot") for item in world.task_items(domain, split)]
    spec = TaskSpec(task_name, "world", domain, f"{world.name} world, domain {domain}", "generated", lambda: items)
    return Task(spec)


def fewshot_examples(task: Task, k: int = K_SHOT, seed: int = 0) -> list[Item]:
    return task.fewshot(min(k, len(task.items("fewshot"))), seed=seed)



def task_outputs(llm, tokenizer, task: Task, split: str = "dev", k_shot: int = K_SHOT, limit: int | None = None,
                 seed: int = 0) -> list[dict]:
    """The output rows of `llm` reading one task split: the evaluation loop (eval/evaluate.py) on the lane where the
    original LLM reads the question, exactly as `salad eval` and the training curves score it."""
    items = task.items(split, limit)
    if not items:
        raise AssetError(f"Task {task.name!r} has no {split!r} items. Fix: rebuild the world or pick another split.")
    fewshot = fewshot_examples(task, k_shot, seed)
    prepared = [PreparedItem(item, item.item_id, None, None) for item in items]
    return evaluate(TextLLM(llm, tokenizer), prepared, ["base_text"], HEADLINE_SCORING, MemorySink(),
                    fewshot=lambda _: fewshot)


def task_accuracy(llm, tokenizer, task: Task, split: str = "dev", k_shot: int = K_SHOT, limit: int | None = None,
                  seed: int = 0, scoring: str = HEADLINE_SCORING) -> float:
    """Text accuracy of `llm` on one task split, each answer picked by `scoring` (by default the headline's)."""
    outputs = task_outputs(llm, tokenizer, task, split, k_shot, limit, seed)
    return float(np.mean([o[correct_column(scoring)] for o in outputs]))


def text_accuracy(llm, tokenizer, world, split: str = "dev", k_shot: int = K_SHOT, limit: int | None = None,
                  scoring: str = HEADLINE_SCORING) -> dict[str, float]:
    """Accuracy per domain name on one split."""
    was_training = llm.training
    llm.eval()
    try:
        return {d.name: task_accuracy(llm, tokenizer, world_task(world, d.name), split, k_shot, limit, scoring=scoring)
                for d in world.domains}
    finally:
        llm.train(was_training)


def target_reached(accuracy: dict[str, float], world, target: float) -> bool:
    return all(accuracy[d.name] >= target for d in world.domains if d.kind == "fact")


STOP_RULES = ("target", "plateau")


def check_stop_rule(until: str) -> None:
    if until not in STOP_RULES:
        raise ValueError(f"Unknown stop rule until={until!r}; use one of {', '.join(STOP_RULES)}.")


def ready_to_decay(history: list[dict], world, target: float, until: str, patience: int, min_gain: float) -> bool:
    """Whether pretraining has learnt what it can, judged from its dev evaluations so far (`history`).

    "target": every fact domain has reached `target`. "plateau": that, and the mean dev accuracy over all domains has
    not beaten its best by `min_gain` for the last `patience` evaluations, so the skill domains (arithmetic,
    calendar, stories) are learnt as far as this LM learns them too. A teacher stopped while its skills still climb
    leaves plain NLL training something to teach that distillation, held to the teacher, cannot learn.
    """
    check_stop_rule(until)
    if not history or not target_reached(history[-1]["dev_accuracy"], world, target):
        return False
    if until == "target":
        return True
    means = [float(np.mean(list(h["dev_accuracy"].values()))) for h in history]
    if len(means) <= patience:
        return False
    return max(means[-patience:]) < max(means[:-patience]) + min_gain
