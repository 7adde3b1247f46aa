"""`salad eval`: the text-speech gap of a speech-adapted model, task by task, with every lane on every item.

For each item the same prompt is scored four ways (the lanes of the paired item):
    base_text  the original LLM reads the question          text  the adapted model reads it
    speech     the adapted model hears it                   cascade  Whisper transcribes it, the original LLM reads that
then accuracies, gap = forgetting + misalignment with bootstrap intervals, cascade WER, and the token-level F and
M on the tasks' dev items (held out from the test items scored). Results go to the store task by task, so an
interrupted run keeps what it finished.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from salad_core.eval.divergence import divergence_estimates, probe_divergence
from salad_core.eval.lanes import PROMPT_TEMPLATE, LaneScorer, PreparedItem, fewshot_for, lane_rows, prompt_segments
from salad_core.eval.metrics import lane_estimates, mean_with_ci
from salad_core.model.processing import Segment
from salad_core.progress import Progress
from salad_core.store import ALL_TASKS, LANES, Store, audio_key, item_key
from salad_core.tasks import Item, get_task

log = logging.getLogger(__name__)

SCORINGS = ("acc", "acc_norm")
DEFAULT_VOICE = "flite:slt@1"
WORLD_VOICE = "world"  # mini-world items as the world spoke them: held-out voices, cached encoder frames


@dataclass
class EvalConfig:
    preset: str = "smol"
    model_path: str | None = None  # a saved SaladModel folder; overrides the preset
    llm: str | None = None  # override the preset's LLM (hub id, alias or folder)
    encoder: str | None = None  # override the preset's speech encoder
    tasks: list[str] | None = None  # default: every task buildable here
    limit: int | None = None  # test items per task
    manifest: str | None = None  # JSONL of the user's own items (evaluated in addition to --tasks if given)
    k_shot: int = 5
    voice: str = DEFAULT_VOICE  # engine:voice@speed for items without a recording; "world": see WORLD_VOICE
    asr: str = "whisper-base"
    asr_beam: int = 1  # greedy decoding: on clean TTS speech it matches beam 5 closely at a third of the time
    scoring: str = "acc_norm"  # which of acc / acc_norm the headline accuracies use (both are stored)
    probe_limit: int = 10  # dev items per task for F and M
    seed: int = 0
    lanes: list[str] = field(default_factory=lambda: list(LANES))

    def __post_init__(self) -> None:
        unknown = [lane for lane in self.lanes if lane not in LANES]
        if unknown or not self.lanes:
            raise ValueError(f"unknown or no lanes {unknown or self.lanes}. Fix: choose from {', '.join(LANES)}.")


# -- aggregation -----------------------------------------------------------------------------------------------


def task_metrics(outputs: list[dict], scoring: str, seed: int) -> dict[str, object]:
    """Accuracies, differences and WER with 95 % intervals from one task's output rows."""
    key = "correct_norm" if scoring == "acc_norm" else "correct"
    by_lane: dict[str, dict[str, bool]] = {}
    for row in outputs:
        by_lane.setdefault(row["lane"], {})[row["item_id"]] = row[key]
    common = sorted(set.intersection(*(set(v) for v in by_lane.values()))) if by_lane else []
    correct = {lane: np.array([rows[i] for i in common], dtype=float) for lane, rows in by_lane.items()}
    estimates = lane_estimates(correct, seed=seed) if common else {}
    wers = [r["wer"] for r in outputs if r["lane"] == "cascade" and r["wer"] is not None]
    if wers:
        estimates["cascade_wer"] = mean_with_ci(np.array(wers))
    return estimates


def metric_rows(task: str, estimates: dict) -> list[dict]:
    return [
        {"task": task, "metric": name, "value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n, "step": None}
        for name, e in estimates.items()
    ]


def summary(run_id: str, per_task: dict[str, dict], divergence: dict[str, float], config: EvalConfig) -> dict:
    """The object `salad eval --json` prints."""
    names = ("text_acc_base", "text_acc", "speech_acc", "cascade_acc", "cascade_wer", "gap", "forgetting", "misalignment")
    tasks = {}
    for task, estimates in per_task.items():
        n = max((e.n for e in estimates.values()), default=0)
        entry = {"n": n, **{k: _num(estimates[k].value) if k in estimates else None for k in names}}
        entry["ci"] = {k: [_num(estimates[k].ci_low), _num(estimates[k].ci_high)] for k in names if k in estimates}
        tasks[task] = entry
    return {"run_id": run_id, "tasks": tasks, "F": _num(divergence.get("F")), "M": _num(divergence.get("M")),
            "scoring": config.scoring, "k_shot": config.k_shot, "voice": config.voice}


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


# -- the run ---------------------------------------------------------------------------------------------------


def load_items(config: EvalConfig) -> tuple[dict[str, list[Item]], dict[str, dict], list[Item]]:
    """Test items per task, each task's store metadata, and the manifest's few-shot items.

    Manifest lines that fail are logged with their line numbers and skipped; the rest is evaluated.
    """
    from salad_core.tasks import available_tasks, load_manifest
    from salad_core.world import is_world_task

    items: dict[str, list[Item]] = {}
    meta: dict[str, dict] = {}
    manifest_fewshot: list[Item] = []
    suite = [t for t in available_tasks() if not is_world_task(t)]
    names = config.tasks if config.tasks is not None else ([] if config.manifest else suite)
    for name in names:
        task = get_task(name)
        items[name] = task.items("test", limit=config.limit)
        meta[name] = {"task": name, "version": task.version, "domain": task.spec.domain,
                      "description": task.spec.description, "source": task.spec.source}
    if config.manifest:
        loaded = load_manifest(config.manifest)
        for error in loaded.errors:
            log.warning("%s line %d skipped: %s", config.manifest, error.line, error.message)
        for item in loaded.items:
            if item.split == "test":
                items.setdefault(item.task, []).append(item)
            elif item.split == "fewshot":
                manifest_fewshot.append(item)
            meta.setdefault(item.task, {"task": item.task, "version": "manifest", "domain": item.domain,
                                        "description": f"from {config.manifest}", "source": str(config.manifest)})
        for task in {i.task for i in loaded.items}:
            items[task] = items.get(task, [])[: config.limit] if config.limit else items.get(task, [])
    return {t: v for t, v in items.items() if v}, meta, manifest_fewshot


def world_speech(items: list[Item]) -> dict[str, tuple[np.ndarray, dict]]:
    """Audio of mini-world items as the world spoke them (each in one of its held-out evaluation voices), with the
    clip's cached encoder frames under "frames" (used when the model's encoder is the world's)."""
    from salad_core.world import load_world

    out, worlds = {}, {}
    for item in items:
        preset = item.task.split("-", 1)[0]
        world = worlds[preset] = worlds.get(preset) or load_world(preset)
        clip_id = world.eval_clip(item.item_id)
        record = world.clip(clip_id)
        engine, _, name = record["voice"].partition(":")
        audio = world.audio(clip_id)
        out[item.item_id] = (audio, {"engine": engine, "voice": name, "speed": record["speed"],
                                     "path": f"world:{world.root.name}/{clip_id}", "text": item.question,
                                     "duration_s": len(audio) / 16000, "sample_rate": 16000,
                                     "frames": world.features([clip_id])[0], "world": world})
    return out


def speak(items: list[Item], voice: str) -> dict[str, tuple[np.ndarray, dict] | Exception]:
    """Audio for each item (by item_id): its own recording when it has one, else the TTS voice.

    With `voice="world"`, mini-world items take the world's own spoken question (`world_speech`). All items go to
    the TTS in one call, so synthesis runs on every core at once; failures stay in their slot.
    """
    from salad_core.audio import load_audio
    from salad_core.tts import VoiceSpec, synthesize_many
    from salad_core.world import is_world_task

    if voice == WORLD_VOICE:
        from_world = [i for i in items if is_world_task(i.task) and not i.audio]
        rest = [i for i in items if not (is_world_task(i.task) and not i.audio)]
        return {**world_speech(from_world), **(speak(rest, DEFAULT_VOICE) if rest else {})}
    spec = VoiceSpec.parse(voice)
    to_speak = [i for i in items if not i.audio]
    paths = dict(zip((i.item_id for i in to_speak), synthesize_many([i.question for i in to_speak], spec)))
    out: dict[str, tuple[np.ndarray, dict] | Exception] = {}
    for item in items:
        source = item.audio or paths[item.item_id]
        engine, voice_name, speed = ("recording", "manifest", 1.0) if item.audio else (spec.engine, spec.voice, spec.speed)
        try:
            if isinstance(source, Exception):
                raise source
            audio = load_audio(source)
        except Exception as err:  # noqa: BLE001 - one bad clip must not stop the batch
            out[item.item_id] = err
            continue
        out[item.item_id] = (audio, {"engine": engine, "voice": voice_name, "speed": speed, "path": str(source),
                                     "text": item.question, "duration_s": len(audio) / 16000, "sample_rate": 16000})
    return out


def build_model(config: EvalConfig):
    from salad_core.model.modeling import SaladModel
    from salad_core.presets import model_config

    torch.manual_seed(config.seed)  # an untrained adapter is still the same adapter on every run
    if config.model_path:
        return SaladModel.from_pretrained(config.model_path)
    return SaladModel(model_config(config.preset, llm_name=config.llm, encoder_name=config.encoder)).eval()


def model_record(model, config: EvalConfig) -> dict:
    cfg = model.config
    adapter = {k: getattr(cfg, k) for k in ("adapter_stack", "adapter_layers", "adapter_width", "adapter_heads", "llm_mode")}
    name = config.model_path or f"{config.preset} (untrained adapter, seed {config.seed})"
    return {"model_id": name, "name": name, "llm": cfg.llm_name, "encoder": cfg.encoder_name, "adapter": adapter,
            "path": config.model_path, "params": model.parameter_table()}


def run_eval(config: EvalConfig, store: Store | None = None) -> dict:
    """Evaluate every lane on every task; write items, scores, outputs and metrics to the store; return the summary."""
    if config.scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}, got {config.scoring!r}")
    torch.set_flush_denormal(True)
    store = store or Store()
    items_by_task, meta, manifest_fewshot = load_items(config)
    if not items_by_task:
        raise ValueError("nothing to evaluate: no task produced test items (check --tasks, --manifest and --limit)")
    model = build_model(config)
    transcriber = None
    if "cascade" in config.lanes:
        from salad_core.asr import Transcriber

        transcriber = Transcriber(config.asr, beam_size=config.asr_beam)
    run_id = store.create_run("eval", asdict(config), model=model_record(model, config),
                              prompt_template=PROMPT_TEMPLATE, seed=config.seed)
    try:
        per_task, probes = _evaluate_tasks(config, store, run_id, model, transcriber, items_by_task, meta, manifest_fewshot)
        pooled = divergence_estimates(probes, config.seed)
        store.add_metrics(run_id, metric_rows(ALL_TASKS, pooled))
        divergence = {k: e.value for k, e in pooled.items()}
    except BaseException as err:
        store.finish_run(run_id, "failed", f"{type(err).__name__}: {err}")
        raise
    store.finish_run(run_id, "done")
    return summary(run_id, per_task, divergence, config)


def _evaluate_tasks(config, store, run_id, model, transcriber, items_by_task, meta, manifest_fewshot):
    scorer = LaneScorer(model, transcriber, config.lanes)
    probe_items = {task: _probe_items(task, config) for task in items_by_task} if "speech" in config.lanes else {}
    every_item = [i for items in [*items_by_task.values(), *probe_items.values()] for i in items]
    spoken = speak(every_item, config.voice)
    per_task, probes, all_outputs = {}, [], []
    with Progress(len(every_item), "scoring items") as progress:
        for task, items in items_by_task.items():
            prepared = _prepare(task, items, meta[task], spoken, store, model.encoder)
            fewshot = fewshot_for(task, config.k_shot, config.seed, manifest_fewshot)
            predictions, outputs = [], []
            for p in prepared:
                for lane, (scores, transcript) in scorer.score(p, fewshot).items():
                    rows, output = lane_rows(p, lane, scores, transcript)
                    predictions += rows
                    outputs.append(output)
                progress.update(1, message=task)
            progress.update(len(items) - len(prepared), message=f"{task}: {len(items) - len(prepared)} skipped")
            estimates = task_metrics(outputs, config.scoring, config.seed)
            task_probes = []
            for item in probe_items.get(task, []):
                if not isinstance(spoken[item.item_id], Exception):
                    segments = prompt_segments([], item.question, spoken[item.item_id][0]) + [Segment(" " + item.target)]
                    task_probes.append(probe_divergence(model, segments))
                progress.update(1, message=f"{task}: F and M probes")
            probes += task_probes
            task_div = {k: e for k, e in divergence_estimates(task_probes, config.seed).items() if e.n}
            rows = metric_rows(task, {**estimates, **task_div})
            store.add_predictions(run_id, predictions)
            store.add_outputs(run_id, outputs)
            store.add_metrics(run_id, rows)
            per_task[task] = estimates
            all_outputs += outputs
    # Pooled over every item of every task (items weigh equally, so larger tasks weigh more).
    store.add_metrics(run_id, metric_rows(ALL_TASKS, task_metrics(all_outputs, config.scoring, config.seed)))
    return per_task, probes


def _prepare(task: str, items: list[Item], meta: dict, spoken: dict, store: Store, encoder=None) -> list[PreparedItem]:
    """Register the task's items and their audio in the store; items whose audio failed are skipped."""
    store.upsert_tasks([meta])
    prepared, item_rows, audio_rows = [], [], []
    for item in items:
        if isinstance(spoken[item.item_id], Exception):
            log.warning("item %s skipped: %s", item.item_id, spoken[item.item_id])
            continue
        audio, info = spoken[item.item_id]
        info = dict(info)
        world, frames = info.pop("world", None), info.pop("frames", None)
        if world is not None and not world.uses_encoder(encoder):
            frames = None  # cached frames are the world's encoder's; another encoder hears the audio
        item_id = item_key(task, meta["version"], item.doc_id)
        audio_id = audio_key(item_id, info["engine"], info["voice"], info["speed"])
        item_rows.append({"item_id": item_id, "task": task, "task_version": meta["version"], "doc_id": item.doc_id,
                          "split": item.split, "question": item.question, "choices": list(item.choices),
                          "answer": item.answer, "domain": item.domain})
        audio_rows.append({"audio_id": audio_id, "item_id": item_id, **info})
        prepared.append(PreparedItem(item, item_id, audio, audio_id, frames))
    store.upsert_items(item_rows)
    store.upsert_audio(audio_rows)
    return prepared


def _probe_items(task: str, config: EvalConfig) -> list[Item]:
    """The task's dev items (never scored as test items) on which F and M are measured; none for manifests."""
    if config.probe_limit <= 0:
        return []
    try:
        return get_task(task).items("dev", limit=config.probe_limit)
    except KeyError:
        return []
