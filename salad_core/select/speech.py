"""Texts of the broad corpus, spoken: interleaved documents whose speech spans are synthesized and encoded.

Stage II speaks two kinds of text this way, into the round's folder (a `ClipBank`): the probe documents that
score each cluster, and the selected documents it trains on. Spans alternate text and speech exactly as in the
world's natural speech (same span lengths). A document is spoken in one voice; given several, documents take them in
turn (the paper uses one voice; `--voice a,b,c` spreads the selection over several).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from salad_core.world import corpus, speech
from salad_core.world.build import spans_to_clips, with_seconds

SHARD_CLIPS = 2000


def speak_documents(texts: list[str], folder: Path, *, prefix: str, voices: tuple[str, ...], speed: float, seed: int,
                    speech_words: tuple[int, int], text_words: tuple[int, int], role: str,
                    progress=None) -> list[dict | None]:
    """One document per text ({"doc_id", "spans", "seconds"}), or None where a clip failed; clips appended to
    `folder/clips.jsonl`, frames written under `folder/features/<prefix>/`."""
    docs, requests = [], []
    for n, text in enumerate(texts):
        rng = random.Random(f"{prefix}/{n}/{seed}")
        spans = corpus.split_spans(text, rng, speech_words, text_words)
        if not any(s.spoken and corpus.speakable_text(s.text) for s in spans):  # a text too short to have a
            spans = corpus.split_spans(text, rng, speech_words, text_words, all_spoken=True)  # speech span
        voice = voices[n % len(voices)]
        rows, reqs = spans_to_clips(spans, f"{prefix}-{n:05d}", voice, speed, role, None, rng)
        docs.append({"doc_id": f"{prefix}-{n:05d}", "spans": rows})
        requests += reqs
    records = speech.encode_clips(requests, folder / "features" / prefix, shard_clips=SHARD_CLIPS, progress=progress,
                                  label=f"{role} speech")
    for record in records:
        if "shard" in record:
            record["shard"] = f"{prefix}/{record['shard']}"
    with open(folder / "clips.jsonl", "a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    seconds = {r["clip_id"]: r["seconds"] for r in records if "error" not in r}
    return [with_seconds(doc, seconds) for doc in docs]
