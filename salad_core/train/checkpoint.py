"""Checkpoints with exact resume: trained weights (safetensors), optimizer, scheduler, RNG and data position.

Layout of a run folder (`data/runs/<run_id>/`, `salad_core.runs.RunDir`):
    config.json                the TrainConfig as given (also in the store's runs table)
    plan.json                  what the trainer derived from it (train.plan.TrainPlan; the store's runs.plan)
    checkpoints/step-000200/   model.safetensors + config.json (SaladModel.save_pretrained: trained weights only),
                               state.pt (optimizer, scheduler, RNG, data position, counters), meta.json
    final/                     the model after the last step (what `salad eval --model` takes), with run.json naming
                               the run (runs.model_run)
The checkpoint at the last step before the learning-rate decay is marked `pre_decay` in its meta.json and is never
pruned: Stage II continues from it. A checkpoint is written to a temporary folder and renamed when complete.
`state.pt` holds only tensors and plain Python values, read back with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from salad_core.errors import TrainingError
from salad_core.model.modeling import WEIGHTS_NAME
from salad_core.runs import RunDir


def rng_state() -> dict:
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [keys.tolist(), int(pos), int(has_gauss), float(gauss)],
            "python": list(random.getstate()[1])}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate((3, tuple(state["python"]), None))


def save_checkpoint(run: RunDir, step: int, model, state: dict, meta: dict, keep: int) -> Path:
    """Write checkpoint `step` atomically, then prune all but the newest `keep` (and the pre-decay one)."""
    final = run.checkpoint(step)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        model.save_pretrained(tmp)
        torch.save(state, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps({"step": step, **meta}, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for _, old in run.checkpoints()[:-keep] if keep > 0 else []:
        if not json.loads((old / "meta.json").read_text()).get("pre_decay"):
            shutil.rmtree(old)
    return final


def load_checkpoint(folder: Path, model) -> tuple[dict, dict]:
    """Load trained weights into `model`; return (state, meta) for the optimizer, scheduler, RNG and data."""
    weights = load_file(Path(folder) / WEIGHTS_NAME)
    expected = set(model.trained_state_dict())
    if set(weights) != expected:
        raise TrainingError(f"checkpoint {folder} does not fit this model: it holds {len(weights)} tensors, the model "
                         f"trains {len(expected)}. Fix: resume with the same preset and llm_mode.")
    model.load_state_dict(weights, strict=False)
    state = torch.load(Path(folder) / "state.pt", weights_only=True)
    return state, json.loads((Path(folder) / "meta.json").read_text())


def restore_training(folder: Path, model, optimizer, data, scheduler=None) -> dict:
    """Continue from checkpoint `folder`: its weights, optimizer moments, RNG, data position and (when given) the
    scheduler's place; returns its meta (step, counters)."""
    state, meta = load_checkpoint(folder, model)
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    data.load_state_dict(state["data"])
    return meta
