"""Did a round's selection go where it helped? Its probes scored again by other models: the Stage II model trained
on the round (M after, against the M the round measured before it), or a Stage I checkpoint.

The round's spoken probes are kept in its `stages/probes/` folder, so scoring them again is the round's own model
actor (select/probe_actors.py) with another model: the same speech, the same clusters, the same M. The per-cluster
means go to the store's `probe_scores`, one row per (round, model, cluster).
"""

from __future__ import annotations

import json
from pathlib import Path

from salad_core.clips import read_jsonl
from salad_core.errors import InputError
from salad_core.runs import RunDir
from salad_core.select.round import round_dir
from salad_core.select.round_stages import PROBES
from salad_core.store import Store


def model_folder(model: str) -> Path:
    """The saved model that `model` names: a training run's final model (RUN) or one of its checkpoints
    (RUN/step-NNNNNN)."""
    run_id, _, checkpoint = model.partition("/")
    run, step = RunDir(run_id, "train"), checkpoint.removeprefix("step-")
    folder = run.checkpoint(int(step)) if step.isdigit() else run.final if not checkpoint else None
    if folder is None or not (folder / "config.json").exists():
        raise InputError(f"No saved model at {folder} for {model!r}. Fix: name a finished training run (its final "
                         "model) or RUN/step-NNNNNN, one of the checkpoints it kept.")
    return folder


def score_probes(store: Store, round_id: str, model: str, ray_address: str | None = None) -> list[dict]:
    """M per cluster (nats/token, with the distillation KL and the tokens) of the round's spoken probes under
    `model` (see `model_folder`), on the Ray cluster at `ray_address` (default: Ray here), stored in
    `probe_scores` and returned."""
    from salad_core.select.probe_actors import misalignment_on_ray
    from salad_core.select.ray_runtime import start_ray

    folder = round_dir(round_id)
    probes_folder = folder / "stages" / "probes"  # as the round's `Stages` wrote it (which would create it)
    if not (probes_folder / PROBES).exists():
        raise InputError(f"Round {round_id} has no spoken probes at {probes_folder}. Fix: finish it first "
                         f"(salad select --resume {round_id}).")
    record = json.loads((folder / "round.json").read_text())
    resources = start_ray(ray_address)
    sums = misalignment_on_ray(read_jsonl(probes_folder / PROBES), probes_folder, record["encoder"],
                               model_folder(model), resources)
    rows = [{"model": model, "cluster": c, "m": s["m"] / s["tokens"], "m_distill": s["distill"] / s["tokens"],
             "m_tokens": s["tokens"]} for c, s in sorted(sums.items()) if s["tokens"]]
    store.add_probe_scores(round_id, rows)
    return rows
