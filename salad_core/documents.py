"""Documents of text and speech spans: how a text is split into spans, spoken span by span, and read back.

A `SpeechDoc` alternates text spans and speech spans of one document; the teacher reads its all-text version, the
student reads the text spans and hears the speech spans (each one TTS clip, so its words are aligned by
construction). `split_spans` plans the spans of a text, `spans_to_clips` turns the spoken ones into clip requests,
`speak_documents` does both for a list of texts and encodes the clips into a folder (a `ClipBank`). The mini world's
natural speech, a selection round's synthetic speech and a held-out probe set are all made this way.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from salad_core.clips import ClipRequest, encode_clips

PUNCT = {".", ",", "?", ":"}
SHARD_CLIPS = 2000


@dataclass(frozen=True)
class Span:
    text: str
    clip_id: str | None  # set -> this span is spoken


@dataclass(frozen=True)
class SpeechDoc:
    doc_id: str
    domain: str
    spans: tuple[Span, ...]
    seconds: float  # seconds of speech in the document (the trainer budgets in hours of speech)

    @property
    def text(self) -> str:
        """The all-text version the teacher reads."""
        return " ".join(s.text for s in self.spans)

    def segments(self) -> list:
        """The document as the model meets it (`model.processing.Segment`s): spans joined by a space, speech spans as
        their clips."""
        from salad_core.model.processing import Segment  # torch: only once a model reads the document

        return [Segment((" " if i else "") + span.text, clip_id=span.clip_id) for i, span in enumerate(self.spans)]

    @classmethod
    def from_record(cls, record: dict, prefix: str = "") -> SpeechDoc:
        """From a `speech_docs.jsonl` row; `prefix` goes in front of the document and clip ids."""
        spans = tuple(Span(text, prefix + clip if clip else None) for text, clip in record["spans"])
        return cls(prefix + record["doc_id"], record["domain"], spans, record["seconds"])


# ---------------------------------------------------------------------------------------------------------------
# Span plans


@dataclass(frozen=True)
class SpanPlan:
    text: str
    spoken: bool


def units(doc: str) -> list[str]:
    """A document's words, each with the punctuation tokens that follow it ("peru ?", "question :")."""
    out: list[str] = []
    for token in doc.split():
        if token in PUNCT and out:
            out[-1] += " " + token
        else:
            out.append(token)
    return out


def split_spans(doc: str, rng: random.Random, speech_words: tuple[int, int], text_words: tuple[int, int],
                all_spoken: bool = False) -> list[SpanPlan]:
    """Alternating text and speech spans of random word lengths (the first one's modality random too)."""
    parts = units(doc)
    if all_spoken:
        return [SpanPlan(" ".join(parts), True)]
    spans, start, spoken = [], 0, rng.random() < 0.5
    while start < len(parts):
        size = rng.randint(*(speech_words if spoken else text_words))
        spans.append(SpanPlan(" ".join(parts[start : start + size]), spoken))
        start += size
        spoken = not spoken
    return spans


def speakable_text(span: str) -> str:
    """What the TTS engine reads for a span: the colons of "question :" / "answer :" are not spoken."""
    return " ".join(t for t in span.split() if t != ":")


def spans_to_clips(spans: list[SpanPlan], prefix: str, voice: str, speed: float, role: str,
                    noise: tuple[float, float, float] | None, rng: random.Random) -> tuple[list, list[ClipRequest]]:
    """Span rows [text, clip_id|None] and the clip requests of the spoken spans."""
    rows, requests = [], []
    for k, span in enumerate(spans):
        if not span.spoken or not speakable_text(span.text):
            rows.append([span.text, None])
            continue
        snr = rng.uniform(noise[1], noise[2]) if noise and rng.random() < noise[0] else None
        clip_id = f"{prefix}-{k:02d}"
        requests.append(ClipRequest(clip_id, speakable_text(span.text), voice, speed, role, snr))
        rows.append([span.text, clip_id])
    return rows, requests


def with_seconds(doc: dict, seconds: dict[str, float]) -> dict | None:
    clips = [clip for _, clip in doc["spans"] if clip is not None]
    if any(clip not in seconds for clip in clips):
        return None
    return {**doc, "seconds": sum(seconds[c] for c in clips)}


def plan_document(text: str, doc_id: str, rng: random.Random, voice: str, speed: float, role: str,
                  speech_words: tuple[int, int], text_words: tuple[int, int]) -> tuple[dict, list[ClipRequest]]:
    """A text as one document ({"doc_id", "spans"}) and the clip requests of its speech spans (a text too short to
    have a speech span is spoken whole)."""
    spans = split_spans(text, rng, speech_words, text_words)
    if not any(s.spoken and speakable_text(s.text) for s in spans):
        spans = split_spans(text, rng, speech_words, text_words, all_spoken=True)
    rows, requests = spans_to_clips(spans, doc_id, voice, speed, role, None, rng)
    return {"doc_id": doc_id, "spans": rows}, requests


def speak_planned(planned: list[tuple[dict, list[ClipRequest]]], folder: Path, prefix: str, *, role: str,
                  encoder: str, progress=None, tts_workers: int | None = None) -> tuple[list[dict | None], list[dict]]:
    """Speak and encode planned documents, frames under `folder/features/<prefix>/`; returns the documents with their
    seconds (None where a clip failed) and the clip records, for the caller to add to `folder/clips.jsonl`."""
    requests = [r for _, reqs in planned for r in reqs]
    records = encode_clips(requests, folder / "features" / prefix, encoder=encoder, shard_clips=SHARD_CLIPS,
                           progress=progress, label=f"{role} speech", tts_workers=tts_workers)
    for record in records:
        if "shard" in record:
            record["shard"] = f"{prefix}/{record['shard']}"
    seconds = {r["clip_id"]: r["seconds"] for r in records if "error" not in r}
    return [with_seconds(doc, seconds) for doc, _ in planned], records


def add_clips(folder: Path, records: list[dict]) -> None:
    with open(folder / "clips.jsonl", "a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


def speak_documents(texts: list[str], folder: Path, *, prefix: str, voices: tuple[str, ...], speed: float, seed: int,
                    speech_words: tuple[int, int], text_words: tuple[int, int], role: str, encoder: str,
                    progress=None) -> list[dict | None]:
    """One document per text ({"doc_id", "spans", "seconds"}), or None where a clip failed; clips appended to
    `folder/clips.jsonl`, frames written under `folder/features/<prefix>/`."""
    planned = [plan_document(text, f"{prefix}-{n:05d}", random.Random(f"{prefix}/{n}/{seed}"), voices[n % len(voices)],
                             speed, role, speech_words, text_words) for n, text in enumerate(texts)]
    docs, records = speak_planned(planned, folder, prefix, role=role, encoder=encoder, progress=progress)
    add_clips(folder, records)
    return docs
