"""One evaluation loop for every caller: on a checkpoint the real commands made (tests/pipeline.py), the world LM's
stopping rule, the training curves and `salad eval` score the same dev items alike, item by item."""

from __future__ import annotations

import pandas as pd
import pytest

from salad_core.eval.config import EvalConfig
from salad_core.eval.evaluate import MemorySink
from salad_core.eval.model import EvaluatedModel, TextLLM
from salad_core.eval.runner import run_eval
from salad_core.eval.vocabulary import ALL_TASKS
from salad_core.model.modeling import SaladModel
from salad_core.runs import RunDir
from salad_core.store import Store
from salad_core.train.evaluate import TRAIN_EVAL_LANES, evaluate_world
from salad_core.world import load_world
from salad_core.world.lm_stopping import task_accuracy, task_outputs, world_task

N_ITEMS = 5  # the nano recipe's eval_items: the training curve's dev slice


def by_item(rows: list[dict], lane: str) -> dict[tuple[str, str], bool]:
    """(task, doc_id) -> whether the lane answered right, from rows keyed by an Item's own id ("task:doc_id")."""
    return {tuple(r["item_id"].split(":", 1)): bool(r["correct_norm"]) for r in rows if r["lane"] == lane}


def test_the_stopping_rule_the_training_curves_and_salad_eval_agree_item_by_item(pipeline, tmp_path, monkeypatch):
    monkeypatch.setenv("SALAD_DATA", str(pipeline.data))
    run = RunDir(pipeline.alpha1, "train")
    step, folder = run.checkpoints()[-1]  # the last step: evaluated by the trainer, its curve point in the store
    model = SaladModel.from_pretrained(folder)
    world = load_world("nano")

    curves = MemorySink()
    rows = evaluate_world(model, world, N_ITEMS, seed=0, sink=curves)
    store = Store(tmp_path / "eval.duckdb")
    summary = run_eval(EvalConfig(preset="nano", model_path=str(folder), tasks=[d.task for d in world.domains],
                                  voice="world", split="dev", limit=N_ITEMS, lanes=list(TRAIN_EVAL_LANES),
                                  corpus=False, probe_limit=0), store)
    stored = store.query("SELECT o.lane, o.correct_norm, i.task, i.doc_id FROM outputs o JOIN items i "
                         "USING (item_id) WHERE o.run_id = ?", [summary["run_id"]])
    evaluated = {(lane, t, d): bool(c) for lane, c, t, d in stored[["lane", "correct_norm", "task", "doc_id"]]
                 .itertuples(index=False)}
    n_dev = sum(len(world.task_items(d.name, "dev")[:N_ITEMS]) for d in world.domains)
    assert len(evaluated) == len(curves.outputs) == len(TRAIN_EVAL_LANES) * n_dev
    for lane in TRAIN_EVAL_LANES:  # the training curve and salad eval, item by item
        assert by_item(curves.outputs, lane) == {(t, d): c for (ln, t, d), c in evaluated.items() if ln == lane}

    stopping = {}  # the world LM's stopping rule reads the same items as the original LLM does in both
    for domain in world.domains:
        outputs = task_outputs(model.llm, model.tokenizer, world_task(world, domain.name), "dev", limit=N_ITEMS)
        stopping.update(by_item(outputs, "base_text"))
        assert task_accuracy(model.llm, model.tokenizer, world_task(world, domain.name), "dev", limit=N_ITEMS) \
            == pytest.approx(summary["tasks"][domain.task]["text_acc_base"])
    assert stopping == by_item(curves.outputs, "base_text")

    curve = pd.DataFrame(rows).set_index(["task", "metric"])["value"]  # ... and their accuracies are the stored curve's
    trained = pipeline.store.metrics(pipeline.alpha1)
    point = trained[trained["step"] == step].set_index(["task", "metric"])["value"]
    for metric in ("text_acc_base", "text_acc", "speech_acc"):
        assert curve[(ALL_TASKS, metric)] == pytest.approx(point[(ALL_TASKS, metric)])
        for domain in world.domains:
            assert summary["tasks"][domain.task][metric] == pytest.approx(curve[(domain.task, metric)])


def test_every_kind_of_model_is_what_the_evaluation_asks_for(pipeline):
    from tests.tiny_models import tiny_salad

    salad = tiny_salad()
    assert isinstance(salad, EvaluatedModel) and isinstance(TextLLM(salad.llm, salad.tokenizer), EvaluatedModel)
    with pytest.raises(ValueError, match="hears nothing"):
        TextLLM(salad.llm, salad.tokenizer).embed_speech([])
