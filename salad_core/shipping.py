"""Shipping a trained model with salad: `salad ship RUN --eval EVAL_RUN` writes `salad_core/adapters/<preset>/`.

The folder is a saved `SaladModel` (config.json, model.safetensors: the trained weights only, in float16) and a model
card (README.md) written from what the store and the run folder recorded: the training data (the broad corpus's
manifest and its audit), the recipe and the command that reproduces it, the commit and the machine, the steps and the
wall time, and the evaluation run's per-task table (text, speech, cascade, no-audio, gap, forgetting, misalignment,
F and M) with 95 % intervals. A fresh clone's `salad eval --preset <preset>` then loads it (EvalConfig.resolved).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd

from salad_core.errors import InputError
from salad_core.eval.vocabulary import ALL_TASKS, FRACTIONS
from salad_core.presets import ADAPTERS_DIR, get_preset
from salad_core.runs import RunDir
from salad_core.store import Store

TABLE = (("text_acc_base", "original LLM, text"), ("text_acc", "text"), ("speech_acc", "speech"),
         ("cascade_acc", "ASR cascade"), ("noaudio_acc", "no audio"), ("gap", "gap"), ("forgetting", "forgetting"),
         ("misalignment", "misalignment"), ("F", "F"), ("M", "M"))


def write_weights(model_folder: Path, out: Path) -> int:
    """Copy a saved model's config and its weights as float16; returns the size of the weights in bytes."""
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((model_folder / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    state = {k: v.half().contiguous() for k, v in load_file(model_folder / "model.safetensors").items()}
    save_file(state, out / "model.safetensors", metadata={"format": "pt"})
    return (out / "model.safetensors").stat().st_size


def _cell(metric: str, row: pd.Series) -> str:
    if pd.isna(row.get("value")):
        return "–"
    scale, digits = (100, 1) if metric in FRACTIONS else (1, 3)
    interval = "" if pd.isna(row.get("ci_low")) else f" [{scale * row['ci_low']:.{digits}f}, {scale * row['ci_high']:.{digits}f}]"
    return f"{scale * row['value']:.{digits}f}{interval}"


def metrics_table(metrics: pd.DataFrame) -> str:
    """The paper's Table 3 layout as Markdown: one row per task (all tasks last), accuracies in %."""
    final = metrics[metrics["step"].isna()]
    tasks = sorted(t for t in final["task"].unique() if t != ALL_TASKS) + [ALL_TASKS]
    lines = ["| task | n | " + " | ".join(label for _, label in TABLE) + " |", "|---" * (len(TABLE) + 2) + "|"]
    for task in tasks:
        rows = final[final["task"] == task].set_index("metric")
        counted = rows["n"].get("speech_acc") if "speech_acc" in rows.index else rows["n"].max()  # items scored
        n = 0 if pd.isna(counted) else int(counted)
        cells = [_cell(m, rows.loc[m]) if m in rows.index else "–" for m, _ in TABLE]
        lines.append(f"| {'all tasks' if task == ALL_TASKS else task} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_card(run_id: str, eval_run: str, store: Store, size: int) -> str:
    from salad_core.broad import load_broad
    from salad_core.train.config import TrainConfig

    runs = store.runs().set_index("run_id")
    train, evaluation = runs.loc[run_id], runs.loc[eval_run]
    config = TrainConfig.from_dict(RunDir(run_id, "train").config())
    steps = store.train_steps(run_id)
    corpus = load_broad().info() if get_preset(config.preset).corpus == "broad" else None
    model = json.loads((RunDir(run_id, "train").final / "config.json").read_text())
    machines = RunDir(run_id, "train").machines()
    eval_cfg = evaluation["config"]
    lines = [f"# The `{config.preset}` preset's trained adapter", "",
             f"{model['llm_name']} hears through the frozen {model['encoder_name']} encoder and this adapter "
             f"({model['adapter_layers']} layers, width {model['adapter_width']}, {model['adapter_stack']}x frame "
             f"stacking; LLM {config.llm_mode}; alignment aid {config.align}). Trained by salad's Stage I "
             f"(run `{run_id}`). Weights: float16, {size / 2**20:.1f} MiB (the trained parts only; the encoder and "
             "the LLM load from their own packages).", "",
             "## Reproduce", "", "```bash", "salad world build --corpus broad",
             "salad train " + shlex.join(config.to_argv()), "```", "",
             f"- commit: `{train['code_version']}`",
             f"- steps: {steps['step'].max()} ({config.ctc_warmup_steps} of them the CTC warm-up), batch {config.batch_size}, "
             f"peak learning rate {config.lr_adapter:g}, alpha {config.alpha:g}, seed {config.seed}",
             f"- speech heard: {steps['speech_s'].max() / 3600:.1f} h (with repeats); wall time "
             f"{steps['wall_s'].max() / 3600:.2f} h",
             ]
    for m in machines:
        lines.append(f"- machine (from step {m['from_step']}, {m['started_at']}): {m['cpu_cores']} CPU cores, "
                     f"{m['device']}{' ' + m['gpu'] if m.get('gpu') else ''}, {m['processes']} process(es), "
                     f"torch {m['torch']}, {m['platform']}")
    if corpus:
        audit = corpus["audit"]
        facts = sum(r["eval_facts"] for r in audit if r["source"] == audit[0]["source"])
        lines += ["", "## Data", "",
                  f"The broad speech corpus (`salad world build --corpus broad`): {corpus['speech_hours']:.2f} h in "
                  f"{corpus['n_speech_docs']} documents, {corpus['n_train_clips']} clips, "
                  f"{len(corpus['train_voices'])} voices (espeak-ng, flite, piper) at speeds "
                  f"{', '.join(f'{s:g}' for s in corpus['train_speeds'])}; sentences per source: "
                  + ", ".join(f"{k} {v}" for k, v in corpus["sources"].items()) + ". "
                  f"The evaluation voice ({corpus['eval_voice']}) is never a training voice. Leak audit: "
                  f"{sum(r['leaked'] for r in audit)} of the {facts} items' facts of the built-in tasks "
                  f"({', '.join(corpus['tasks'])}; every split) stated in what the model hears."]
    lines += ["", "## Evaluation", "",
              f"`salad eval` run `{eval_run}` (commit `{evaluation['code_version']}`): split {eval_cfg['split']}, "
              f"{eval_cfg.get('limit') or 'all'} items per task, voice {eval_cfg['voice']}, {eval_cfg['k_shot']}-shot, "
              f"{eval_cfg['scoring']}. Accuracies and differences in %, 95 % intervals over items; F and M in nats "
              "per token (corpus, held-out documents).", "", metrics_table(store.metrics(eval_run)), ""]
    return "\n".join(lines)


def ship(run_id: str, eval_run: str, store: Store | None = None, out: Path | None = None) -> Path:
    """Write the run's final model, as float16, and its model card into `out` (default: the preset's shipped
    adapter folder); returns the folder."""
    store = store or Store()
    run = RunDir(run_id, "train")
    if not (run.final / "model.safetensors").is_file():
        raise InputError(f"run {run_id} has no final model in {run.final}. Fix: let the run finish "
                                f"(salad train --resume {run_id}).")
    out = Path(out) if out else ADAPTERS_DIR / run.config()["preset"]
    size = write_weights(run.final, out)
    (out / "README.md").write_text(model_card(run_id, eval_run, store, size))
    return out
