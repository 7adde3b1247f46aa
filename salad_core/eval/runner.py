"""`salad eval`: the text-speech gap of a speech-adapted model, task by task, with every lane on every item.

For each item the same prompt is scored in each lane of the paired item (eval/vocabulary.py):
    base_text  the original LLM reads the question          text  the adapted model reads it
    speech     the adapted model hears it                   cascade  Whisper transcribes it, the original LLM reads that
    noaudio    the adapted model hears silence as long as the question: the floor the prompt and options give
each through the one evaluation loop (eval/evaluate.py); then accuracies (with audio_gain = speech − noaudio), gap =
forgetting + misalignment with bootstrap intervals, cascade WER, the token-level F and M on the tasks' dev items
(held out from the test items scored), and corpus F and M on the model's held-out probe documents (eval/probes.py).
Results go to the store task by task, so an interrupted run keeps what it finished.

With `voices` (a sweep, `salad eval --voices`), the text lanes are scored once and the lanes that hear the question
once per voice condition (eval/voices.py); F and M are measured in the first condition, the run's reference voice.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict

import numpy as np
import torch

from salad_core.clips import same_encoder
from salad_core.errors import InputError
from salad_core.eval.config import EvalConfig
from salad_core.eval.divergence import divergence_estimates
from salad_core.eval.evaluate import StoreSink, evaluate, item_divergences
from salad_core.eval.lanes import PROMPT_TEMPLATE, PreparedItem, fewshot_for
from salad_core.eval.metrics import (
    Estimate,
    metric_rows,
    parse_fail_metric,
    task_metrics,
)
from salad_core.eval.probes import heard_spans, measure
from salad_core.eval.vocabulary import (
    ALL_TASKS,
    AUDIO_LANES,
    DEFAULT_VOICE,
    DIVERGENCES,
    LANES,
    NO_CONDITION,
    REPORT_METRICS,
    WORLD_VOICE,
)
from salad_core.eval.voices import (
    CONDITION_METRICS,
    RECORDING,
    Condition,
    check_conditions,
    load_clip,
    render,
)
from salad_core.presets import shipped_adapter
from salad_core.progress import Progress
from salad_core.runs import model_run
from salad_core.store import Store, audio_key, item_key
from salad_core.tasks import Item, get_task
from salad_core.tasks.registry import task_spec

log = logging.getLogger(__name__)


# -- aggregation -----------------------------------------------------------------------------------------------


def condition_estimates(text_outputs: list[dict], heard: dict[str, list[dict]], scoring: str,
                        seed: int) -> dict[str, dict[str, Estimate]]:
    """Estimates by condition: the text lanes' once (under NO_CONDITION), and per condition those that depend on
    what was heard, paired with the text lanes over the items heard in it."""
    out = {NO_CONDITION: task_metrics(text_outputs, scoring, seed)}
    for condition, outputs in heard.items():
        estimates = task_metrics(text_outputs + outputs, scoring, seed)
        out.setdefault(condition, {}).update({k: e for k, e in estimates.items() if k in CONDITION_METRICS})
    return out


def _summary_entry(estimates: dict[str, Estimate], names: tuple[str, ...]) -> dict:
    entry = {"n": max((e.n for e in estimates.values()), default=0),
             **{k: _num(estimates[k].value) if k in estimates else None for k in names}}
    entry["ci"] = {k: [_num(estimates[k].ci_low), _num(estimates[k].ci_high)] for k in names if k in estimates}
    fails = {lane: _num(estimates[parse_fail_metric(lane)].value) for lane in LANES if parse_fail_metric(lane) in estimates}
    if fails:
        entry["parse_fail"] = fails
    return entry


def summary(run_id: str, per_task: dict[str, dict[str, dict]], divergence: dict[str, float],
            config: EvalConfig, corpus: dict[str, dict] | None = None, corpus_heard: str | None = None) -> dict:
    """The object `salad eval --json` prints; `per_task` holds each task's estimates by condition. `tasks` is the
    headline (the reference voice in a sweep), `conditions` one entry per condition of a sweep; `F` and `M` are the
    corpus measure (pooled; by domain under `corpus`; `corpus_heard` says which speech spans the model heard), and
    `item_F` and `item_M` the measure on the tasks' dev items."""
    tasks = {task: _summary_entry({**by_condition.get(NO_CONDITION, {}), **by_condition.get(config.reference, {})},
                                  REPORT_METRICS) for task, by_condition in per_task.items()}
    conditions = [{"condition": c, "tasks": {task: _summary_entry(by_condition.get(c, {}), CONDITION_METRICS)
                                             for task, by_condition in per_task.items()}} for c in config.voices or []]
    by_domain = {domain: {**{k: _num(e.value) for k, e in est.items()},
                          "ci": {k: [_num(e.ci_low), _num(e.ci_high)] for k, e in est.items()},
                          "m_tokens": est["M"].n} for domain, est in (corpus or {}).items()}
    return {"run_id": run_id, "tasks": tasks, **{k: _num(divergence.get(k)) for k in DIVERGENCES},
            "corpus": by_domain, "corpus_heard": corpus_heard, "scoring": config.scoring, "k_shot": config.k_shot,
            "voice": config.voice, "conditions": conditions}


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


# -- the run ---------------------------------------------------------------------------------------------------


def load_items(config: EvalConfig) -> tuple[dict[str, list[Item]], dict[str, dict], list[Item]]:
    """Test items per task, each task's store metadata, and the manifest's other items (few-shot examples, and dev
    items: held out from the test items scored, they carry item F and M).

    Manifest lines that fail are logged with their line numbers and skipped; the rest is evaluated.
    """
    from salad_core.tasks import load_manifest, suite_tasks

    items: dict[str, list[Item]] = {}
    meta: dict[str, dict] = {}
    manifest_rest: list[Item] = []
    names = config.tasks if config.tasks is not None else ([] if config.manifest or config.dataset else suite_tasks())
    for name in names:
        task = get_task(name)
        items[name] = task.items(config.split, limit=config.limit)
        meta[name] = {"task": name, "version": task.version, "domain": task.spec.domain,
                      "description": task.spec.description, "source": task.spec.source}
    if config.manifest:
        loaded = load_manifest(config.manifest)
        for error in loaded.errors:
            log.warning("%s line %d skipped: %s", config.manifest, error.line, error.message)
        for item in loaded.items:
            if item.split == "test":
                items.setdefault(item.task, []).append(item)
            else:
                manifest_rest.append(item)
            meta.setdefault(item.task, {"task": item.task, "version": "manifest", "domain": item.domain,
                                        "description": f"from {config.manifest}", "source": str(config.manifest)})
        for task in {i.task for i in loaded.items}:
            items[task] = items.get(task, [])[: config.limit] if config.limit else items.get(task, [])
    if config.dataset:
        from salad_core.tasks.hub import dataset_items

        task, rows = dataset_items(config.dataset, config.limit, question=config.question_column,
                                   choices=config.choices_column, answer=config.answer_column,
                                   audio=config.audio_column)
        items[task] = rows
        meta[task] = {"task": task, "version": "hub", "domain": rows[0].domain, "description": f"from {config.dataset}",
                      "source": config.dataset}
    return {t: v for t, v in items.items() if v}, meta, manifest_rest


def speak(items: list[Item], voice: str) -> dict[str, tuple[np.ndarray, dict] | Exception]:
    """Audio for each item (by item_id): its own recording when it has one, else the TTS voice.

    With `voice="world"` (WORLD_VOICE), an item of a task that speaks its own questions (`TaskSpec.spoken`: a mini
    world's, in held-out voices with cached encoder frames) takes that speech. All items go to the TTS in one call,
    so synthesis runs on every core at once; failures stay in their slot.
    """
    from salad_core.tts import VoiceSpec, synthesize_many

    if voice == WORLD_VOICE:
        own = {i.item_id: task_spec(i.task).spoken for i in items if not i.audio and task_spec(i.task)
               and task_spec(i.task).spoken}
        rest = [i for i in items if i.item_id not in own]
        return {**{i.item_id: own[i.item_id](i) for i in items if i.item_id in own},
                **(speak(rest, DEFAULT_VOICE) if rest else {})}
    spec = VoiceSpec.parse(voice)
    to_speak = [i for i in items if not i.audio]
    paths = dict(zip((i.item_id for i in to_speak), synthesize_many([i.question for i in to_speak], spec)))
    return {item.item_id: load_clip(item, item.audio, *RECORDING) if item.audio else
            load_clip(item, paths[item.item_id], spec.engine, spec.voice, spec.speed) for item in items}


def build_model(config: EvalConfig):
    from salad_core.model.modeling import SaladModel
    from salad_core.presets import model_config

    config = config.resolved()
    if config.speech_llm:
        from salad_core.speechllm.model import load_speech_llm

        return load_speech_llm(config.speech_llm, config.llm, config.trust_remote_code)
    torch.manual_seed(config.seed)  # an untrained adapter is still the same adapter on every run
    if config.model_path:
        return SaladModel.from_pretrained(config.model_path)
    return SaladModel.build(model_config(config.preset, llm_name=config.llm, encoder_name=config.encoder)).eval()


def speech_llm_config(config: EvalConfig, model) -> EvalConfig:
    """A speech LLM's run: no base_text lane without the text LLM it was built from (forgetting, and F, are then
    not applicable). Corpus F and M are measured on the broad probe documents, heard by the speech LLM itself."""
    from dataclasses import replace

    lanes = [lane for lane in config.lanes if lane != "base_text" or model.base is not None]
    if len(lanes) < len(config.lanes):
        log.info("%s has no text LLM to compare with (pass --llm): forgetting is not applicable", config.speech_llm)
    return replace(config, lanes=lanes)


def model_record(model, config: EvalConfig) -> dict:
    if config.speech_llm:
        return model.record()
    cfg = model.config
    adapter = {k: getattr(cfg, k) for k in ("adapter_stack", "adapter_layers", "adapter_width", "adapter_heads", "llm_mode")}
    name = config.model_path or f"{config.preset} (untrained adapter, seed {config.seed})"
    if config.model_path and config.model_path == str(shipped_adapter(config.preset)):
        name = f"{config.preset} (shipped adapter)"
    return {"model_id": name, "name": name, "llm": cfg.llm_name, "encoder": cfg.encoder_name, "adapter": adapter,
            "path": config.model_path, "params": model.parameter_table()}


def run_eval(config: EvalConfig, store: Store | None = None) -> dict:
    """Evaluate every lane on every task; write items, scores, outputs and metrics to the store; return the summary."""
    torch.set_flush_denormal(True)
    store = store or Store()
    config = config.resolved()  # the run records the model folder it used (the shipped adapter's, for smol)
    items_by_task, meta, manifest_rest = load_items(config)
    if not items_by_task:
        raise InputError("nothing to evaluate: no task produced test items (check --tasks, --manifest, --dataset "
                         "and --limit)")
    check_conditions(config.conditions, [i for items in items_by_task.values() for i in items])
    model = build_model(config)
    if config.speech_llm:
        config = speech_llm_config(config, model)
    transcriber = None
    if "cascade" in config.lanes:
        from salad_core.asr import Transcriber

        transcriber = Transcriber(config.asr, beam_size=config.asr_beam)
    trained_by = model_run(config.model_path) if config.model_path else None  # the training run it scores
    with store.run("eval", asdict(config), model=model_record(model, config), prompt_template=PROMPT_TEMPLATE,
                   seed=config.seed, parent_run=trained_by) as run_id:
        per_task, probes = _evaluate_tasks(config, store, run_id, model, transcriber, items_by_task, meta, manifest_rest)
        pooled = divergence_estimates(probes, config.seed, prefix="item_")
        corpus = corpus_metrics(model, config, store, run_id, set(items_by_task)) if config.corpus else {}
        store.add_metrics(run_id, metric_rows(ALL_TASKS, pooled, config.reference))
        divergence = {k: e.value for k, e in {**pooled, **corpus.get(ALL_TASKS, {})}.items()}
    return summary(run_id, per_task, divergence, config, corpus, heard_spans(model) if config.corpus else None)


def corpus_metrics(model, config: EvalConfig, store: Store, run_id: str, tasks: set[str]) -> dict[str, dict]:
    """Corpus F and M on the model's held-out probe documents (eval/probes.py), stored pooled (task `__all__`) and,
    for a domain that stands for an evaluated task, as that task's F and M; returns the estimates by domain."""
    probe_set, corpus = measure(model, config.seed, progress=True, n_docs=config.corpus_docs)
    rows = metric_rows(ALL_TASKS, corpus[ALL_TASKS], config.reference)
    for domain, estimates in corpus.items():
        if probe_set.tasks.get(domain) in tasks:
            rows += metric_rows(probe_set.tasks[domain], estimates, config.reference)
    store.add_metrics(run_id, rows)
    return corpus


def _hear(items: list[Item], config: EvalConfig, condition: Condition | None) -> dict:
    """Audio by item_id in one condition (None: a single-voice run's `speak` in its voice)."""
    if not items:
        return {}
    return speak(items, config.voice) if condition is None else render(items, condition)


def _evaluate_tasks(config, store, run_id, model, transcriber, items_by_task, meta, manifest_rest):
    """Every task through the evaluation loop (eval/evaluate.py): the lanes that read the question once, those that
    hear it once per voice condition; then each task's metrics and item F and M. Returns the estimates per task and
    condition, and every task's item probes."""
    hearing = [lane for lane in config.lanes if lane in AUDIO_LANES]
    reading = [lane for lane in config.lanes if lane not in AUDIO_LANES]
    conditions = {c.key: c for c in config.conditions} if config.voices else {NO_CONDITION: None}
    spoken = {key: _hear([i for v in items_by_task.values() for i in v], config, c)
              for key, c in conditions.items()} if hearing else {}
    probe_items = ({task: _probe_items(task, config, manifest_rest) for task in items_by_task}
                   if "speech" in config.lanes else {})
    probe_audio = _hear([i for v in probe_items.values() for i in v], config, conditions[config.reference])
    sink = StoreSink(store, run_id)
    options = {"fewshot": lambda task: fewshot_for(task, config.k_shot, config.seed, manifest_rest),
               "max_new_tokens": config.max_new_tokens}
    per_task, probes, text_all, heard_all = {}, [], [], {key: [] for key in spoken}
    n_items = sum(map(len, items_by_task.values()))
    with Progress(n_items * (bool(reading) + len(spoken)) + sum(map(len, probe_items.values())),
                  "scoring items") as progress:
        for task, items in items_by_task.items():
            keys = _register(task, items, meta[task], spoken, store, run_id)
            text_out, heard, scored = [], {}, 0
            if reading:
                read = [PreparedItem(i, keys[i.item_id], None, None) for i in items if i.item_id in keys]
                text_out = evaluate(model, read, reading, config.scoring, sink, progress=progress, **options)
                scored += len(read)
            for key, audio in spoken.items():
                prepared = _prepare(items, keys, audio, key, store, run_id, model.encoder)
                heard[key] = evaluate(model, prepared, hearing, config.scoring, sink, transcriber=transcriber,
                                      condition=key, progress=progress, **options)
                heard_all[key] += heard[key]
                scored += len(prepared)
            progress.update(len(items) * (bool(reading) + len(spoken)) - scored, message=f"{task}: items skipped")
            estimates = condition_estimates(text_out, heard, config.scoring, config.seed)
            task_probes = item_divergences(model, [_heard_item(i, i.item_id, probe_audio[i.item_id], model.encoder)[0]
                                                   for i in probe_items.get(task, [])
                                                   if isinstance(probe_audio.get(i.item_id), tuple)])
            progress.update(len(probe_items.get(task, [])), message=f"{task}: item F and M")
            probes += task_probes
            task_div = {k: e for k, e in divergence_estimates(task_probes, config.seed, prefix="item_").items() if e.n}
            store.add_metrics(run_id, [r for c, est in estimates.items() for r in metric_rows(task, est, c)]
                              + metric_rows(task, task_div, config.reference))
            per_task[task] = estimates
            text_all += text_out
    # Pooled over every item of every task (items weigh equally, so larger tasks weigh more).
    pooled = condition_estimates(text_all, heard_all, config.scoring, config.seed)
    store.add_metrics(run_id, [r for c, est in pooled.items() for r in metric_rows(ALL_TASKS, est, c)])
    return per_task, probes


def _register(task: str, items: list[Item], meta: dict, spoken: dict[str, dict], store: Store,
              run_id: str) -> dict[str, str]:
    """Register the task and its items heard in some condition (every item when no lane hears them); returns the
    store key of each by item_id. Items heard nowhere are skipped, and the run notes each."""
    store.upsert_tasks([meta])
    keys, rows = {}, []
    for item in items:
        outcomes = [audio[item.item_id] for audio in spoken.values() if item.item_id in audio]
        if spoken and not any(isinstance(o, tuple) for o in outcomes):
            _skip(store, run_id, item, outcomes[0] if outcomes else "no audio in any condition")
            continue
        keys[item.item_id] = item_key(task, meta["version"], item.doc_id)
        rows.append({"item_id": keys[item.item_id], "task": task, "task_version": meta["version"],
                     "doc_id": item.doc_id, "split": item.split, "question": item.question,
                     "choices": list(item.choices), "answer": item.answer, "domain": item.domain})
    store.upsert_items(rows)
    return keys


def _prepare(items: list[Item], keys: dict[str, str], spoken: dict, condition: str, store: Store, run_id: str,
             encoder=None) -> list[PreparedItem]:
    """The registered items heard in one condition, their audio registered in the store; an item whose audio
    failed there is skipped, and the run notes it (the others, and its other conditions, go on)."""
    prepared, rows = [], []
    for item in items:
        outcome = spoken.get(item.item_id)
        if item.item_id not in keys or outcome is None:
            continue
        if isinstance(outcome, Exception):
            _skip(store, run_id, item, outcome, f" in condition {condition}" if condition else "")
            continue
        heard, row = _heard_item(item, keys[item.item_id], outcome, encoder)
        prepared.append(heard)
        rows.append(row)
    store.upsert_audio(rows)
    return prepared


def _heard_item(item: Item, item_id: str, outcome: tuple[np.ndarray, dict], encoder) -> tuple[PreparedItem, dict]:
    """The item heard as `outcome` (its audio, and what made it), with its cached encoder frames when this model's
    encoder made them; and the store's `item_audio` row of that audio."""
    audio, info = outcome
    info = dict(info)
    frames, made_by = info.pop("frames", None), info.pop("encoder", None)
    if frames is not None and not same_encoder(encoder, made_by):
        frames = None  # cached frames are another encoder's: this one hears the audio
    audio_id = audio_key(item_id, info["engine"], info["voice"], info["speed"], info.get("snr_db"))
    return PreparedItem(item, item_id, audio, audio_id, frames), {"audio_id": audio_id, "item_id": item_id, **info}


def _skip(store: Store, run_id: str, item: Item, why: object, where: str = "") -> None:
    """An item left out of the run (its audio failed): logged, and noted in the run (`salad runs show`)."""
    log.warning("item %s skipped%s: %s", item.item_id, where, why)
    store.add_note(run_id, f"item {item.item_id} skipped{where}: {why}")


def _probe_items(task: str, config: EvalConfig, manifest_rest: list[Item]) -> list[Item]:
    """The task's dev items (never scored as test items) on which item F and M are measured: a registered task's,
    or a manifest's lines of split "dev"."""
    if config.probe_limit <= 0:
        return []
    try:
        return get_task(task).items("dev", limit=config.probe_limit)
    except KeyError:
        return [i for i in manifest_rest if i.task == task and i.split == "dev"][: config.probe_limit]
