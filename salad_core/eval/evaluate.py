"""The evaluation loop, written once: items put to lanes, their rows to a sink.

    outputs = evaluate(model, items, ["base_text", "text", "speech"], "acc_norm", MemorySink(), fewshot=shots)

Every evaluation in salad runs through `evaluate`: `salad eval` (eval/runner.py: per task, the text lanes once and
the lanes that hear once per voice condition), the periodic evaluation during training (train/evaluate.py), the
world LM's stopping rule (world/lm.py, the LM seen as a `TextLLM`) and speech LLMs (`SpeechLLM`); the model is
anything that satisfies `EvaluatedModel` (eval/model.py). The sink is the results store (`StoreSink`) or rows in
memory (`MemorySink`); every metric is then computed from the output rows by eval/metrics.py, in one place.

`item_divergences` is the item-level F and M of the same items: the question heard, its answer read after it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from salad_core.errors import InputError
from salad_core.eval.divergence import ProbeDivergence, probe_divergence
from salad_core.eval.lanes import LaneScorer, PreparedItem, prompt_segments
from salad_core.eval.vocabulary import LANE_TABLE, NO_CONDITION, SCORINGS
from salad_core.model.processing import Segment
from salad_core.progress import Progress
from salad_core.tasks import Item


class Sink(Protocol):
    def write(self, predictions: list[dict], outputs: list[dict]) -> None: ...


@dataclass
class MemorySink:
    """Rows kept in memory (training's periodic evaluation, the world LM's stopping rule, tests)."""

    predictions: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)

    def write(self, predictions: list[dict], outputs: list[dict]) -> None:
        self.predictions += predictions
        self.outputs += outputs


@dataclass
class StoreSink:
    """Rows written to one run of the results store (its items registered first)."""

    store: object  # salad_core.store.Store
    run_id: str

    def write(self, predictions: list[dict], outputs: list[dict]) -> None:
        self.store.add_predictions(self.run_id, predictions)
        self.store.add_outputs(self.run_id, outputs)


def no_fewshot(task: str) -> list[Item]:
    return []


@torch.no_grad()
def evaluate(model, items: Sequence[PreparedItem], lanes: Sequence[str], scoring: str, sink: Sink, *,
             fewshot: Callable[[str], list[Item]] = no_fewshot, transcriber=None, condition: str = NO_CONDITION,
             progress: Progress | None = None, max_new_tokens: int = 32) -> list[dict]:
    """Put every item to every lane of `lanes` and write the rows to `sink` (once, at the end); returns the output
    rows. `fewshot(task)` gives a task's examples (asked once per task), `transcriber` is the cascade's ASR,
    `condition` labels the rows of one voice condition of a sweep. An item is left out of a lane it cannot be put
    to (a lane that hears needs the item's audio or cached frames)."""
    if scoring not in SCORINGS:
        raise InputError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
    unknown = [lane for lane in lanes if lane not in LANE_TABLE]
    if unknown:
        raise InputError(f"unknown lanes {unknown}. Fix: choose from {', '.join(LANE_TABLE)}.")
    scorer = LaneScorer(model, transcriber, max_new_tokens)
    shots: dict[str, list[Item]] = {}
    predictions, outputs = [], []
    for prepared in items:
        task = prepared.item.task
        if task not in shots:
            shots[task] = fewshot(task)
        rows, answered = scorer.rows(prepared, shots[task], list(lanes), scoring)
        predictions += [{**row, "condition": condition} for row in rows]
        outputs += [{**row, "condition": condition} for row in answered]
        if progress is not None:
            progress.update(1, message=task + (f" · {condition}" if condition else ""))
    sink.write(predictions, outputs)
    return outputs


@torch.no_grad()
def item_divergences(model, items: Sequence[PreparedItem]) -> list[ProbeDivergence]:
    """F and M terms of each item (eval/divergence.py) with its question heard (its audio or its cached frames) and
    its answer read after it, in the adapted model's prompt framing; items with nothing to hear are left out."""
    out = []
    for p in items:
        if p.audio is None and p.frames is None:
            continue
        heard = prompt_segments([], p.item.question, p.audio, p.audio_id)
        segments = model.prompt(heard + [Segment(" " + p.item.target)], "student")
        out.append(probe_divergence(model, segments, None if p.frames is None else model.adapt_frames([p.frames])))
    return out
