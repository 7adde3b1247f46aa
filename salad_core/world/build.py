"""Building the mini world once (cached) and reading it back: presets, the build pipeline, `World`, `load_world`.

A world lives in `cache_dir("worlds") / f"{preset}-{digest}"`, where the digest covers the preset's config and the
source of the world's generator modules, so a change to either builds a new world and an unchanged one is never
rebuilt. The folder is written under a temporary name and renamed when complete (`assets.cached_build`):

    manifest.json        config, domains, voices, sizes, speech hours, build timings
    corpus.jsonl         broad text corpus (all domains)             {"domain", "text"}
    probes.jsonl         held-out probe documents, with speech spans {"domain", "text", "spans"}
    items.jsonl          MC items of every domain, with the clip of the spoken question
    speech_docs.jsonl    natural-speech training documents (covered domains only)
    clips.jsonl          one record per clip: text, voice, speed, role, trim bounds, SNR, seconds, shard
    features/shard-NNN.safetensors   float16 Whisper tiny.en frames (frames, 384) keyed by clip id
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from salad_core.assets import AssetError, cached_build, sources_digest
from salad_core.clips import ClipRequest, encode_clips
from salad_core.documents import spans_to_clips, speakable_text, split_spans, with_seconds
from salad_core.paths import cache_dir
from salad_core.progress import PROGRESS_ENV, NoProgress, Progress, read_progress
from salad_core.tasks.item import Item
from salad_core.text import stable_hash
from salad_core.world import audit, corpus, speech
from salad_core.world.domains import domain_defs
from salad_core.world.world import World

RECIPE = "world-v6"  # bump when the folder layout changes
# Eval facts become the tasks' items and are never spoken in training: enough of them for 95 % intervals of about
# +-0.07 on the test split, the rest (and every background statement) what the speech may say.
_EVAL_SHARE = {"capitals": 0.6, "elements": 0.75, "animals": 0.75, "arithmetic": 0.6, "calendar": 0.65, "stories": 1.0}
PRESETS: dict[str, dict] = {
    # a handful of facts per domain, two training voices per accent: the whole build in well under a minute.
    "nano": {"sizes": {"capitals": 10, "elements": 6, "animals": 5, "arithmetic": 12, "calendar": 6, "stories": 12},
             "eval_share": _EVAL_SHARE, "corpus_stories": 60, "corpus_repeats": 4, "fresh_repeats": 2,
             "background_repeats": 2, "probe_docs": 2, "speech_repeats": 1, "speech_background_repeats": 1,
             "per_doc": [2, 3], "full_spoken": 0.2, "speech_words": [2, 5], "text_words": [2, 5], "train_variants": 1,
             "noise_fraction": 0.5, "snr_db": [15, 35], "fewshot": 0.2, "dev": 0.2, "shard_clips": 2000, "seed": 0,
             "speech_register": "conversational"},
    # 170 countries, every element, animal and operand pair; 300 test-side stories. Stories are told twice each in
    # the corpus (once as a question/answer pair): at 8 repeats they were 73 % of the broad corpus, so that its
    # clusters, and any selection drawn in proportion to it, were mostly stories.
    "mini": {"sizes": {"capitals": 170, "elements": 0, "animals": 0, "arithmetic": 0, "calendar": 0, "stories": 300},
             "eval_share": _EVAL_SHARE, "corpus_stories": 1500, "corpus_repeats": 8, "fresh_repeats": 2,
             "background_repeats": 4, "probe_docs": 60, "speech_repeats": 8, "speech_background_repeats": 8,
             "per_doc": [2, 5], "full_spoken": 0.2, "speech_words": [2, 6], "text_words": [2, 6],
             "train_variants": 16, "noise_fraction": 0.5, "snr_db": [15, 35], "fewshot": 0.03, "dev": 0.2,
             "shard_clips": 2000, "seed": 0, "speech_register": "conversational"},
}
# the world's LM is built with it, so its recipes (lm_recipes.py) are part of what a world folder is made from
_GENERATORS = ("domains.py", "facts.py", "skills.py", "corpus.py", "audit.py", "speech.py", "build.py",
               "lm_recipes.py")


def preset_config(preset: str) -> dict:
    if preset not in PRESETS:
        raise AssetError(f"Unknown world preset {preset!r}. Fix: use one of {', '.join(PRESETS)}.")
    return PRESETS[preset]


def _sources() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [here / name for name in _GENERATORS]


def _recipe(preset: str) -> str:
    return json.dumps({"recipe": RECIPE, "preset": preset, "config": preset_config(preset)}, sort_keys=True)


def world_dir(preset: str) -> Path:
    """Where the world of `preset` with today's config and code lives (built or not)."""
    return cache_dir("worlds") / f"{preset}-{sources_digest(_sources(), _recipe(preset))}"


def is_built(preset: str) -> bool:
    return (world_dir(preset) / ".complete").exists()


# ---------------------------------------------------------------------------------------------------------------
# Planning: everything but the audio


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def _fact_record(fact, domain: str, split: str) -> dict:
    return {"domain": domain, "split": split, "key": fact.key, "question": fact.question, "answer": fact.answer,
            "said": list(fact.said), "subject": list(fact.subject), "cues": list(fact.cues), "group": fact.group,
            "scope": fact.scope}


def _plan_text(preset: str, cfg: dict) -> dict:
    """Facts split by purpose, corpus (eval and pool documents), probes and items per domain (pure text; fast)."""
    seed, per_doc = cfg["seed"], tuple(cfg["per_doc"])
    plan = {"corpus": [], "probes": [], "items": [], "facts": [], "speech": {}}
    for definition in domain_defs(preset):
        dom, size = definition.domain, cfg["sizes"][definition.domain.name]
        facts = definition.facts(size, seed)
        background = definition.background(size, seed) if definition.background else []
        eval_facts, train_facts = corpus.split_facts(definition, facts, cfg["eval_share"][dom.name], seed)
        if definition.fresh_corpus:  # the corpus tells other stories
            train_facts = corpus.fresh_facts(definition, facts, cfg["corpus_stories"], seed)
        repeats = cfg["fresh_repeats"] if definition.fresh_corpus else cfg["corpus_repeats"]
        rng = corpus._rng("corpus", dom.name, seed)
        said = corpus.documents(corpus.mentions_of(eval_facts, [], repeats, 0), rng, per_doc) \
            if not definition.fresh_corpus else []
        pool = corpus.documents(corpus.mentions_of(train_facts, background, repeats, cfg["background_repeats"]), rng,
                                per_doc)
        probe_facts = corpus.fresh_facts(definition, facts + train_facts, 4 * cfg["probe_docs"], seed + 7) \
            if definition.fresh_corpus else facts
        probes = corpus.probe_documents(probe_facts, cfg["probe_docs"], seed, dom.name, set(said + pool), per_doc)
        plan["corpus"] += [{"domain": dom.name, "text": d, "pool": False} for d in said]
        plan["corpus"] += [{"domain": dom.name, "text": d, "pool": True} for d in pool]
        plan["probes"] += [{"domain": dom.name, "text": d} for d in probes]
        plan["items"] += corpus.task_items(dom.task, dom.name, eval_facts, cfg["fewshot"], cfg["dev"])
        plan["facts"] += [_fact_record(f, dom.name, "eval") for f in eval_facts]
        plan["facts"] += [_fact_record(f, dom.name, "train") for f in train_facts]
        plan["eval_facts"] = {**plan.get("eval_facts", {}), dom.task: eval_facts}
        if dom.in_natural_speech:
            plan["speech"][dom.name] = (train_facts, background)
    order = random.Random(f"corpus-order/{seed}")
    order.shuffle(plan["corpus"])
    return plan


def _plan_speech(plan: dict, cfg: dict) -> tuple[list[dict], list[ClipRequest]]:
    """Natural-speech documents of the covered domains (train facts and background only), split into spans, with
    one clip per spoken span."""
    seed, docs, requests = cfg["seed"], [], []
    voices = speech.train_voices(cfg["train_variants"])
    noise = (cfg["noise_fraction"], *cfg["snr_db"])
    for name, (facts, background) in plan["speech"].items():
        rng = corpus._rng("speech", name, seed)
        mentions = corpus.mentions_of(facts, background, cfg["speech_repeats"], cfg["speech_background_repeats"])
        for written in corpus.documents(mentions, rng, tuple(cfg["per_doc"])):
            text = corpus.in_register(written, cfg["speech_register"], rng)
            doc_id = f"s{len(docs):05d}"
            spans = split_spans(text, rng, tuple(cfg["speech_words"]), tuple(cfg["text_words"]),
                                all_spoken=rng.random() < cfg["full_spoken"])
            rows, reqs = spans_to_clips(spans, doc_id, rng.choice(voices), rng.choice(speech.TRAIN_SPEEDS),
                                        "train", noise, rng)
            docs.append({"doc_id": doc_id, "domain": name, "spans": rows})
            requests += reqs
    return docs, requests


def training_sources(speech_docs: list[dict], pool: list[str]) -> dict[str, list[str]]:
    """What a speech model trains on, by source: the natural speech as it meets it (read and spoken spans joined in
    order), the alignment aid's transcripts (the spoken spans) and Stage II's selection pool."""
    return {"natural speech": [" ".join(text for text, _ in d["spans"]) for d in speech_docs],
            "alignment transcripts": [text for d in speech_docs for text, clip in d["spans"] if clip],
            "selection pool": pool}


def _plan_eval(plan: dict, cfg: dict) -> list[ClipRequest]:
    """Spoken questions of every dev/test item and speech spans of every probe document, in eval voices only."""
    requests = []
    for n, item in enumerate(plan["items"]):
        if item.split == "fewshot":  # few-shot examples are always shown as text
            continue
        voice = speech.EVAL_VOICES[stable_hash("eval-voice", item.item_id) % len(speech.EVAL_VOICES)]
        clip_id = f"q{n:05d}"
        plan["item_clips"][item.item_id] = clip_id
        requests.append(ClipRequest(clip_id, speakable_text(item.question), voice, 1.0, "eval"))
    for n, probe in enumerate(plan["probes"]):
        rng = corpus._rng("probe-speech", str(n), cfg["seed"])
        spans = split_spans(probe["text"], rng, tuple(cfg["speech_words"]), tuple(cfg["text_words"]))
        voice = speech.EVAL_VOICES[n % len(speech.EVAL_VOICES)]
        probe["spans"], reqs = spans_to_clips(spans, f"p{n:05d}", voice, 1.0, "probe", None, rng)
        requests += reqs
    return requests


# ---------------------------------------------------------------------------------------------------------------
# Building


def _write_world(out: Path, preset: str, cfg: dict, progress: bool, lm: bool) -> None:
    started = time.monotonic()
    plan = _plan_text(preset, cfg)
    plan["item_clips"] = {}
    speech_docs, train_requests = _plan_speech(plan, cfg)
    # the leak audit, before any audio: a world whose training speech states an eval fact is not built
    plan["audit"] = audit.audit(plan["eval_facts"], training_sources(speech_docs, [d["text"] for d in plan["corpus"]
                                                                                 if d["pool"]]))
    audit.check(plan["audit"])
    eval_requests = _plan_eval(plan, cfg)
    planned = time.monotonic()
    _write_text(out, preset, cfg, plan, speech_docs)
    lm_job = _start_lm(out) if lm else None
    try:
        requests = train_requests + eval_requests
        cores = (lambda: 1 if lm_job.poll() is None else None) if lm_job else None
        with Progress(len(requests), f"world {preset}: speech") if progress else NoProgress() as bar:
            records = encode_clips(requests, out / "features", encoder=speech.ENCODER, shard_clips=cfg["shard_clips"],
                                   progress=bar, label="world speech", threads=cores)
        seconds = {r["clip_id"]: r["seconds"] for r in records if "error" not in r}
        kept_docs = [with_seconds(d, seconds) for d in speech_docs]
        kept_docs = [d for d in kept_docs if d is not None]  # a failed clip drops its document, the rest go on
        speech_done = time.monotonic()
        if lm_job:
            _finish_lm(lm_job, out, progress)
    finally:
        if lm_job and lm_job.poll() is None:
            lm_job.kill()
    _write_jsonl(out / "speech_docs.jsonl", kept_docs)
    _write_jsonl(out / "clips.jsonl", records)
    timings = {"text_s": planned - started, "speech_s": speech_done - planned,
               "total_s": time.monotonic() - started}
    manifest = _manifest(preset, cfg, out.name.split(".tmp")[0], plan, kept_docs, records, timings)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _write_text(out: Path, preset: str, cfg: dict, plan: dict, speech_docs: list[dict]) -> None:
    """Everything the world's LM reads, before any audio: corpus, probes, items, the planned speech documents, and a
    first manifest (name, config, domains) that the complete one replaces at the end."""
    items = [{**asdict(i), "clip_id": plan["item_clips"].get(i.item_id)} for i in plan["items"]]
    _write_jsonl(out / "corpus.jsonl", plan["corpus"])
    _write_jsonl(out / "facts.jsonl", plan["facts"])
    _write_jsonl(out / "probes.jsonl", plan["probes"])
    _write_jsonl(out / "items.jsonl", items)
    _write_jsonl(out / "speech_docs.jsonl", [{**d, "seconds": None} for d in speech_docs])
    domains = [asdict(d.domain) for d in domain_defs(preset)]
    (out / "manifest.json").write_text(json.dumps({"name": preset, "recipe": RECIPE, "config": cfg, "domains": domains}))


# The world's LM needs only the text, so it pretrains in a child process while the speech is synthesized and
# encoded, each on one core; the encoder takes every core once the LM is done (the LM keeps its one thread, so every
# build gives the same LM). The child writes its progress (steps, and the dev accuracy at each check) to LM_PROGRESS;
# once the speech is done, the build shows it as its own bar.
LM_LOG = "lm-pretraining.log"
LM_PROGRESS = "lm-progress.json"
FOLLOW_EVERY_S = 1.0


def _start_lm(out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", PROGRESS_ENV: str(out / LM_PROGRESS)}
    with open(out / LM_LOG, "w") as log:  # the child keeps its own handle
        return subprocess.Popen([sys.executable, "-m", "salad_core.world.lm", str(out)], stdout=log, stderr=log,
                                env=env)


def _finish_lm(job: subprocess.Popen, out: Path, progress: bool = True) -> None:
    """Wait for the LM child, showing its progress; an AssetError with its log's end if it failed."""
    with Progress(None, "world LM: pretraining") if progress else NoProgress() as bar:
        while job.poll() is None:
            bar.follow(read_progress(out / LM_PROGRESS) or {})
            time.sleep(FOLLOW_EVERY_S)
        bar.follow(read_progress(out / LM_PROGRESS) or {})
    if job.returncode != 0:
        tail = (out / LM_LOG).read_text()[-2000:]
        raise AssetError(f"Pretraining the world's LM failed (exit {job.returncode}); its log ends:\n{tail}\n"
                         "Fix: read the error above; `salad world build --no-lm` builds the world without it, and "
                         "the LM is then trained on first use.")
    for name in (LM_LOG, LM_PROGRESS):
        (out / name).unlink(missing_ok=True)


def _manifest(preset: str, cfg: dict, folder: str, plan: dict, docs: list[dict], records: list[dict],
              timings: dict) -> dict:
    items: list[Item] = plan["items"]
    domains = []
    for definition in domain_defs(preset):
        dom = definition.domain
        counts = {s: sum(1 for i in items if i.domain == dom.name and i.split == s) for s in ("dev", "test", "fewshot")}
        split = [f["split"] for f in plan["facts"] if f["domain"] == dom.name]
        domains.append({**asdict(dom), "n_test": counts["test"], "n_dev": counts["dev"],
                        "n_fewshot": counts["fewshot"], "n_eval_facts": split.count("eval"),
                        "n_train_facts": split.count("train"),
                        "n_corpus_docs": sum(1 for d in plan["corpus"] if d["domain"] == dom.name),
                        "n_pool_docs": sum(1 for d in plan["corpus"] if d["domain"] == dom.name and d["pool"]),
                        "n_speech_docs": sum(1 for d in docs if d["domain"] == dom.name)})
    ok = [r for r in records if "error" not in r]
    train = [r for r in ok if r["role"] == "train"]
    return {"name": preset, "folder": folder, "recipe": RECIPE, "config": cfg, "domains": domains,
            "natural_speech_domains": [d["name"] for d in domains if d["in_natural_speech"]],
            "speech_hours": sum(d["seconds"] for d in docs) / 3600, "n_speech_docs": len(docs),
            "n_clips": len(ok), "n_train_clips": len(train), "n_failed_clips": len(records) - len(ok),
            "eval_speech_hours": sum(r["seconds"] for r in ok if r["role"] != "train") / 3600,
            "n_corpus_docs": len(plan["corpus"]), "n_pool_docs": sum(1 for d in plan["corpus"] if d["pool"]),
            "n_probe_docs": len(plan["probes"]),
            "train_voices": speech.train_voices(cfg["train_variants"]), "eval_voices": list(speech.EVAL_VOICES),
            "train_speeds": list(speech.TRAIN_SPEEDS), "encoder": speech.ENCODER, "feature_dtype": "float16",
            "audit": plan["audit"], "build_s": timings,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def build_world(preset: str = "mini", *, force: bool = False, progress: bool = True, lm: bool = True) -> World:
    """Build the world of `preset` (text, speech, encoder features, and with `lm` its LM, pretrained beside the
    speech) unless it is already built; then load it. A world built without its LM trains it on first use."""
    cfg = preset_config(preset)
    final = world_dir(preset)
    if force and final.exists():
        import shutil

        shutil.rmtree(final)
    folder = cached_build("worlds", preset, _sources(), lambda out: _write_world(out, preset, cfg, progress, lm),
                          recipe=_recipe(preset))
    return World(folder)


def load_world(preset: str = "mini") -> World:
    """The built world of `preset`; an AssetError naming the build command when it is not built."""
    preset_config(preset)
    folder = world_dir(preset)
    if not (folder / ".complete").exists():
        raise AssetError(f"The '{preset}' world is not built (expected {folder}). "
                         f"Fix: run `salad world build --corpus {preset}` (a few minutes for mini, seconds for nano).")
    return World(folder)
