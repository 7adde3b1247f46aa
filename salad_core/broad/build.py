"""Building the broad speech corpus once (cached) and finding it again.

The `smol` preset trains on broad English (broad/texts.py) spoken by many offline TTS voices, at several speeds,
some of it with light noise: the same `SpeechDoc` layout as the mini world's natural speech (text and speech spans
alternating, each speech span one clip), its frames cached once for the preset's encoder (Whisper-base). The leak
audit against every item of the built-in tasks runs before any audio: sentences that state an item's fact are
dropped, and the build refuses to finish if anything it would speak still states one. The folder
(`cache_dir("broad") / "broad-<digest>"`, the digest covering this config and the generator modules):

    manifest.json        config, sources and their sizes, voices, speech hours, the audit table, timings
    corpus.jsonl         every sentence kept {"source", "text"}: what the documents are made of
    speech_docs.jsonl    training documents {"doc_id", "domain" (the source), "spans", "seconds"}
    dev_items.jsonl      the built-in tasks' dev items spoken for the periodic evaluation {"item_id", "clip_id"}
    clips.jsonl, features/shard-NNN.safetensors    one record and float16 frames per clip (salad_core/clips.py)

Synthesis is cached per utterance, so a build that is interrupted and started again re-synthesizes nothing.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from salad_core.assets import AssetError, cached_build, sources_digest
from salad_core.broad import texts
from salad_core.broad.audit import SentenceFilter, audit_table, suite_facts
from salad_core.clips import ClipRequest, encode_clips
from salad_core.documents import spans_to_clips, speakable_text, split_spans, with_seconds
from salad_core.eval.probes import BROAD_VOICE
from salad_core.paths import cache_dir
from salad_core.progress import NoProgress, Progress
from salad_core.tasks import get_task, suite_tasks
from salad_core.world import speech
from salad_core.world.audit import check

RECIPE = "broad-v2"  # v2: the entities source
ENCODER = "openai/whisper-base"  # the smol preset's encoder
EVAL_VOICE = BROAD_VOICE  # `salad eval`'s default voice (and the probe set's): never a training voice
PIPER_VOICES = ("piper:en_US-joe-medium",)
CONFIG = {
    # sentences drawn per source (None: all of it), after the audit
    "sentences": {"wordnet glosses": 4000, "wordnet examples": 2000, "freshqa": None, "arithmetic": None,
                  "entities": None},
    "arithmetic_per_operation": 150, "sentences_per_doc": [1, 2], "speech_words": [3, 10], "text_words": [2, 8],
    "full_spoken": 0.3, "train_variants": 16, "engine_shares": [0.55, 0.3, 0.15], "noise_fraction": 0.3, "snr_db": [15, 35],
    "dev_items": 40, "shard_clips": 2000, "seed": 0,
}
_GENERATORS = ("texts.py", "audit.py", "build.py")


def _sources() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [here / name for name in _GENERATORS]


def _recipe() -> str:
    return json.dumps({"recipe": RECIPE, "config": CONFIG, "encoder": ENCODER, "tasks": suite_tasks()}, sort_keys=True)


def broad_dir() -> Path:
    return cache_dir("broad") / f"broad-{sources_digest(_sources(), _recipe())}"


def is_built() -> bool:
    return (broad_dir() / ".complete").exists()


# ---------------------------------------------------------------------------------------------------------------
# Planning: everything but the audio


def plan_sentences(cfg: dict = CONFIG) -> tuple[list[dict], dict]:
    """The sentences the corpus speaks ({"source", "text"}, shuffled) and the audit's facts, leaking ones dropped."""
    facts = suite_facts(suite_tasks())
    keep = SentenceFilter(facts).keep
    rng = random.Random(f"broad-sentences/{cfg['seed']}")
    rows = []
    for source, sentences in texts.broad_sentences(cfg["arithmetic_per_operation"], cfg["seed"]).items():
        wanted = cfg["sentences"][source]
        rng.shuffle(sentences)
        kept = keep(sentences[: int(wanted * 1.1)] if wanted else sentences)[:wanted]
        rows += [{"source": source, "text": s} for s in kept]
    rng.shuffle(rows)
    return rows, facts


def _voices(cfg: dict) -> list[list[str]]:
    """The training voices by engine (espeak, flite, piper); `engine_shares` weighs the engines, not the voices:
    flite has three training voices against espeak's 96, and the evaluation voice is a flite one."""
    espeak = speech.train_voices(cfg["train_variants"], flite=False)
    return [espeak, [f"flite:{v}" for v in speech.TRAIN_FLITE], list(PIPER_VOICES)]


def plan_documents(sentences: list[dict], cfg: dict = CONFIG) -> tuple[list[dict], list[ClipRequest]]:
    """Documents of 1-2 sentences of one source, split into text and speech spans; one clip request per speech span."""
    rng = random.Random(f"broad-docs/{cfg['seed']}")
    voices, noise = _voices(cfg), (cfg["noise_fraction"], *cfg["snr_db"])  # voices: espeak, flite, piper
    docs, requests, cursor = [], [], 0
    while cursor < len(sentences):
        size = rng.randint(*cfg["sentences_per_doc"])
        group = [s for s in sentences[cursor : cursor + size] if s["source"] == sentences[cursor]["source"]]
        cursor += len(group)
        doc_id = f"b{len(docs):05d}"
        text = " ".join(s["text"] for s in group)
        spans = split_spans(text, rng, tuple(cfg["speech_words"]), tuple(cfg["text_words"]),
                            all_spoken=rng.random() < cfg["full_spoken"])
        if not any(s.spoken and speakable_text(s.text) for s in spans):  # every document is heard somewhere
            spans = split_spans(text, rng, (1, 1), (1, 1), all_spoken=True)
        voice = rng.choice(voices[rng.choices(range(len(voices)), cfg["engine_shares"])[0]])
        rows, reqs = spans_to_clips(spans, doc_id, voice, rng.choice(speech.TRAIN_SPEEDS), "train", noise, rng)
        docs.append({"doc_id": doc_id, "domain": group[0]["source"], "spans": rows})
        requests += reqs
    return docs, requests


def plan_dev_clips(cfg: dict = CONFIG) -> tuple[list[dict], list[ClipRequest]]:
    """The first `dev_items` dev items of every built-in task, spoken in the evaluation voice (periodic evaluation)."""
    rows, requests = [], []
    for task in suite_tasks():
        for item in get_task(task).items("dev")[: cfg["dev_items"]]:
            clip_id = f"q{len(rows):05d}"
            rows.append({"item_id": item.item_id, "task": task, "clip_id": clip_id})
            requests.append(ClipRequest(clip_id, speakable_text(item.question), EVAL_VOICE, 1.0, "eval"))
    return rows, requests


def training_sources(docs: list[dict]) -> dict[str, list[str]]:
    """What a model hears from this corpus, as the audit reads it: the documents, and the spoken spans alone."""
    return {"speech documents": [" ".join(text for text, _ in d["spans"]) for d in docs],
            "spoken spans": [text for d in docs for text, clip in d["spans"] if clip]}


# ---------------------------------------------------------------------------------------------------------------
# Building


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


def _write(out: Path, cfg: dict, progress: bool) -> None:
    started = time.monotonic()
    sentences, facts = plan_sentences(cfg)
    docs, train_requests = plan_documents(sentences, cfg)
    table = audit_table(facts, training_sources(docs))  # the check, before any audio
    check(table)
    dev_rows, dev_requests = plan_dev_clips(cfg)
    planned = time.monotonic()
    requests = train_requests + dev_requests
    with Progress(len(requests), "broad speech") if progress else NoProgress() as bar:
        records = encode_clips(requests, out / "features", encoder=ENCODER, shard_clips=cfg["shard_clips"],
                               progress=bar, label="broad speech")
    seconds = {r["clip_id"]: r["seconds"] for r in records if "error" not in r}
    kept = [d for d in (with_seconds(d, seconds) for d in docs) if d is not None]
    _write_jsonl(out / "corpus.jsonl", sentences)
    _write_jsonl(out / "speech_docs.jsonl", kept)
    _write_jsonl(out / "dev_items.jsonl", [r for r in dev_rows if r["clip_id"] in seconds])
    _write_jsonl(out / "clips.jsonl", records)
    ok = [r for r in records if "error" not in r]
    voices = sorted({r["voice"] for r in ok if r["role"] == "train"})  # the ones actually used
    manifest = {
        "name": "broad", "folder": out.name.split(".tmp")[0], "recipe": RECIPE, "config": cfg, "encoder": ENCODER,
        "feature_dtype": "float16", "tasks": suite_tasks(),
        "sources": {s: sum(1 for r in sentences if r["source"] == s) for s in cfg["sentences"]},
        "n_speech_docs": len(kept), "n_train_clips": sum(1 for r in ok if r["role"] == "train"),
        "n_failed_clips": len(records) - len(ok), "speech_hours": sum(d["seconds"] for d in kept) / 3600,
        "train_voices": voices, "train_speeds": list(speech.TRAIN_SPEEDS), "eval_voice": EVAL_VOICE,
        "audit": table, "build_s": {"text_s": planned - started, "speech_s": time.monotonic() - planned},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


def build_broad(*, progress: bool = True):
    """Build the broad speech corpus unless it is built; then load it."""
    from salad_core.broad.corpus import BroadSpeech

    return BroadSpeech(cached_build("broad", "broad", _sources(), lambda out: _write(out, CONFIG, progress),
                                    recipe=_recipe()))


def load_broad():
    """The built broad speech corpus; an AssetError naming the build command when it is not built."""
    from salad_core.broad.corpus import BroadSpeech

    if not is_built():
        raise AssetError(f"The broad speech corpus is not built (expected {broad_dir()}). "
                         "Fix: run `salad world build --corpus broad` (about 20 minutes on 2 cores).")
    return BroadSpeech(broad_dir())
