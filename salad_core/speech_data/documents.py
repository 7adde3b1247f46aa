"""Interleaved training documents from natural speech: consecutive utterances of one document, some stretches read
as text and the others heard as speech, as SALAD trains on them (text spans of 10-30 words, speech spans of 5-15).

    chunks = document_chunks(utterances, max_words=400)      # consecutive utterances of one document, in pos order
    spans = plan_spans(chunk, rng, SpanRanges(), timed)       # [(text, Heard | None), ...]

A span is planned in words. Inside an utterance whose word timings are known (the source's, or the ASR's: `timed`
gives them) a speech span may start and end at any word, and is heard as that stretch of the utterance's audio; an
utterance without timings is one unit, read or heard whole. A speech span never crosses two utterances (their audio
is not contiguous). A document whose plan hears nothing (one short utterance, say) is heard whole, as the mini
world speaks some documents whole (its first utterance heard, the rest read).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from salad_core.speech_data.utterance import Utterance, Word

MAX_DOC_WORDS = 400  # a longer document is cut into chunks of about this many words (the LLM's context)


@dataclass(frozen=True)
class SpanRanges:
    speech_words: tuple[int, int] = (5, 15)  # the paper's speech spans
    text_words: tuple[int, int] = (10, 30)  # and text spans


@dataclass(frozen=True)
class Heard:
    """A stretch of one utterance's audio: `start`..`end` seconds, or all of it (None, None)."""

    utterance: Utterance
    start: float | None = None
    end: float | None = None

    @property
    def key(self) -> str:
        whole = self.start is None
        return self.utterance.utt_id if whole else f"{self.utterance.utt_id}@{self.start:.3f}-{self.end:.3f}"


@dataclass(frozen=True)
class _Unit:
    """A word with its time, or an untimed utterance as a whole."""

    text: str
    n_words: int
    utterance: Utterance
    word: Word | None


def document_chunks(utterances: Iterable[Utterance], max_words: int = MAX_DOC_WORDS) -> Iterator[list[Utterance]]:
    """Runs of consecutive utterances of one document, each cut at about `max_words` words and put in `pos` order
    (a source is read in its own order: utterances of one document must come together)."""
    chunk: list[Utterance] = []
    words = 0
    for utt in utterances:
        if chunk and (utt.doc != chunk[-1].doc or words >= max_words):
            yield sorted(chunk, key=lambda u: u.pos)
            chunk, words = [], 0
        chunk.append(utt)
        words += len(utt.text.split())
    if chunk:
        yield sorted(chunk, key=lambda u: u.pos)


def _units(chunk: list[Utterance], timed) -> list[_Unit]:
    units = []
    for utt in chunk:
        words = timed(utt)
        if words:
            units += [_Unit(w.text, 1, utt, w) for w in words]
        else:
            units.append(_Unit(utt.text, len(utt.text.split()), utt, None))
    return units


def _heard(units: list[_Unit]) -> Heard:
    utt = units[0].utterance
    if units[0].word is None:
        return Heard(utt)
    return Heard(utt, units[0].word.start, units[-1].word.end)


Timings = Callable[[Utterance], "tuple[Word, ...] | None"]  # an utterance's word timings, where known


def plan_spans(chunk: list[Utterance], rng: random.Random, ranges: SpanRanges = SpanRanges(),
               timed: Timings = lambda u: u.words) -> list[tuple[str, Heard | None]]:
    """Alternating text and speech spans over the chunk's words (the first span's modality random)."""
    units = _units(chunk, timed)
    spans: list[tuple[str, Heard | None]] = []
    start, spoken = 0, rng.random() < 0.5
    while start < len(units):
        size = rng.randint(*(ranges.speech_words if spoken else ranges.text_words))
        end, words = start, 0
        while end < len(units) and words < size:
            if spoken and end > start and units[end].utterance is not units[start].utterance:
                break  # a speech span stays inside one utterance
            words += units[end].n_words
            end += 1
        taken = units[start:end]
        spans.append((" ".join(u.text for u in taken), _heard(taken) if spoken else None))
        start, spoken = end, not spoken
    if not any(heard for _, heard in spans):
        rest = " ".join(u.text for u in chunk[1:])
        return [(chunk[0].text, Heard(chunk[0]))] + ([(rest, None)] if rest else [])
    return spans
