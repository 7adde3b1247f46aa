"""Word timings of an utterance, for utterances whose source carries none: PocketSphinx's forced alignment of the
transcript, with the cascade's Whisper as the judge of the transcript and the fallback for the times.

The transcript is the truth: `word_timings` returns one `Word` per transcript word, in the transcript's spelling.
By default (`method="aligned"`) the transcript is force-aligned to the audio (`forced_align.py`): the aligner is told
the words and only finds where each starts and ends, which puts nearly every boundary within 40 ms on speech with known
boundaries. Where it cannot (a word it cannot pronounce, a search that does not reach the end), and with
`method="whisper"`, the times are Whisper's: the transcript's words are aligned to the words Whisper heard (an
edit-distance alignment on normalised text, numbers spelled out on both sides); a transcript word paired with a heard
word takes its times, the others are interpolated between their neighbours by character share, and the model's
constant lag is undone (`WORD_TIME_SHIFT_S`). Either way, a boundary with a pause at it is moved to that pause's
edges (`snap.py`).

The character error rate of what Whisper heard against the transcript travels with the timings: above `MAX_CER` the
transcript is not what was said (or the ASR cannot hear it), so the times are not to be trusted and the utterance is
dropped (`drop_reason`). `timing_cache.py` keeps each result on disk so an utterance is timed once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from rapidfuzz.distance import Levenshtein

from salad_core.asr import char_error_rate, normalize_text
from salad_core.assets import canonical_name
from salad_core.audio import SAMPLE_RATE
from salad_core.speech_data.forced_align import default_aligner
from salad_core.speech_data.snap import snap_boundaries
from salad_core.speech_data.utterance import Word

# Between what a right transcript costs and what a wrong one does: on espeak-ng sentences (benchmarks/word_timings.py,
# 56 clips) Whisper base's CER against the right transcript had a median of 0.06 and was above 0.3 for 7 % of them
# (robotic voices it mishears), against another sentence's transcript never below 0.54. Past 0.3 the two disagree on
# whole words, and times aligned to such a transcript are guesses. (tiny.en mishears more: 29 % above 0.3.)
MAX_CER = 0.3
MIN_WORD_S = 0.04  # an unheard word squeezed between touching neighbours gets at least this much room
# Added to every word time a model gives. Whisper's times come from the cross-attention of a few heads, whose lag
# behind the audio is the model's own: on espeak-ng speech with known word starts (benchmarks/word_timings.py, the
# development sentences), base puts them a median 45 ms early and tiny.en 90 ms late, whatever the voice. The values
# were fitted there and checked on held-out sentences; other models (no measurement) are left as they are.
WORD_TIME_SHIFT_S = {"openai/whisper-base": 0.05, "openai/whisper-tiny.en": -0.08}
METHODS = ("aligned", "whisper")  # forced alignment (Whisper where it fails), or Whisper's word times alone

Span = tuple[float, float]


class WordASR(Protocol):
    """What `word_timings` needs of a recogniser (`salad_core.asr.Transcriber` is one)."""

    model_name: str

    def transcribe(self, audio: np.ndarray) -> str:
        """The text heard in 16 kHz mono audio (the words of `words` joined by spaces, at half its cost)."""
        ...

    def words(self, audio: np.ndarray) -> list[tuple[str, float, float]]:
        """(word, start s, end s) of each word heard in 16 kHz mono audio."""
        ...


class Aligner(Protocol):
    """What `word_timings` needs of a forced aligner (`forced_align.SphinxAligner` is one)."""

    def align(self, audio: np.ndarray, words: list[str]) -> list[Span] | None:
        """(start, end) seconds of each of `words` in 16 kHz mono audio, or None where they cannot be aligned."""
        ...


@dataclass(frozen=True)
class Timing:
    """An utterance's word timings and how far to trust them."""

    words: tuple[Word, ...]  # one per transcript word, in order, non-overlapping, within the audio
    cer: float  # character error rate of what the ASR heard against the transcript
    matched: int  # transcript words timed by themselves: aligned, or by the heard word paired with them
    interpolated: int  # transcript words the ASR did not pair, timed from their neighbours (Whisper's times only)
    heard: str = ""  # what the ASR heard, for the record
    method: str = "whisper"  # what gave the times: "aligned" (the forced alignment) or "whisper"

    def to_json(self) -> dict:
        words = [[w.text, w.start, w.end] for w in self.words]
        return {"words": words, "cer": self.cer, "matched": self.matched, "interpolated": self.interpolated,
                "heard": self.heard, "method": self.method}

    @classmethod
    def from_json(cls, data: dict) -> Timing:
        words = tuple(Word(text, float(start), float(end)) for text, start, end in data["words"])
        return cls(words, float(data["cer"]), int(data["matched"]), int(data["interpolated"]), data.get("heard", ""),
                   data.get("method", "whisper"))


def word_timings(audio: np.ndarray, transcript: str, asr: WordASR, *, snap: bool = True, method: str = "aligned",
                 aligner: Aligner | None = None) -> Timing:
    """Times of the transcript's words in 16 kHz mono `audio`: force-aligned by `aligner` (PocketSphinx unless given)
    with `asr` judging the transcript, or with `method="whisper"` (and where the alignment fails) from the words `asr`
    hears; `snap` moves a boundary between two words to the edges of a pause at it."""
    if method not in METHODS:
        raise ValueError(f"word timings: unknown method {method!r}. Fix: use one of {', '.join(METHODS)}.")
    words = transcript_words(transcript)
    if method == "aligned":
        timing = aligned_timings(audio, words, asr, aligner or default_aligner(), snap)
        if timing is not None:
            return timing
    heard = calibrated(asr.words(audio), asr.model_name)
    return align_words(words, heard, len(audio) / SAMPLE_RATE, audio if snap else None)


def aligned_timings(audio: np.ndarray, words: list[str], asr: WordASR, aligner: Aligner, snap: bool = True
                    ) -> Timing | None:
    """The transcript `words` timed by the forced alignment, with the CER of what `asr` hears; None when the aligner
    cannot align them (the caller then takes Whisper's times)."""
    spans = aligner.align(audio, words)
    if spans is None:
        return None
    if snap:
        spans = snap_boundaries(audio, spans)
    heard = asr.transcribe(audio)
    cer = char_error_rate(" ".join(words), heard, spell_numbers=True)
    return Timing(_timed(words, spans), round(cer, 4), len(words), 0, heard, "aligned")


def calibrated(heard: list[tuple[str, float, float]], model: str) -> list[tuple[str, float, float]]:
    """The ASR's word times with the model's lag undone (`WORD_TIME_SHIFT_S`)."""
    shift = WORD_TIME_SHIFT_S.get(canonical_name(model), 0.0)
    return [(word, max(start + shift, 0.0), max(end + shift, 0.0)) for word, start, end in heard]


def transcript_words(transcript: str) -> list[str]:
    """The transcript's words: its whitespace-separated tokens that hold something spoken (a lone dash is not)."""
    words = [w for w in transcript.split() if normalize_text(w, spell_numbers=True)]
    if not words:
        raise ValueError(f"word timings: the transcript {transcript!r} has no words. Fix: drop the utterance or "
                         f"correct its transcript.")
    return words


def align_words(words: list[str], heard: list[tuple[str, float, float]], seconds: float,
                audio: np.ndarray | None = None) -> Timing:
    """Time the transcript `words` by the ASR's `heard` (word, start, end) within `seconds` of audio; with `audio`,
    boundaries are snapped to the pauses in it. No model here: the tests feed `heard` directly."""
    ref, ref_owner = _tokens(words)
    hyp, hyp_owner = _tokens([w for w, _, _ in heard])
    hyp_spans = _token_spans(hyp, hyp_owner, [(s, e) for _, s, e in heard])
    spans, paired = _pair(ref, hyp, hyp_spans)
    spans = _monotone(_fill_gaps(spans, ref, seconds), seconds)
    bounds = [(spans[ref_owner.index(i)][0], spans[_last(ref_owner, i)][1]) for i in range(len(words))]
    if audio is not None:
        bounds = snap_boundaries(audio, bounds)
    matched = sum(all(paired[k] for k, o in enumerate(ref_owner) if o == i) for i in range(len(words)))
    text = " ".join(w for w, _, _ in heard)
    cer = char_error_rate(" ".join(words), text, spell_numbers=True)
    return Timing(_timed(words, bounds), round(cer, 4), matched, len(words) - matched, text)


def keep(timing: Timing, max_cer: float = MAX_CER) -> bool:
    """Whether the utterance's transcript agrees with what the ASR hears closely enough to use its timings."""
    return timing.cer <= max_cer


def drop_reason(timing: Timing, max_cer: float = MAX_CER) -> str | None:
    """Why the utterance is dropped, or None when it is kept."""
    if keep(timing, max_cer):
        return None
    return f"transcript disagrees with the ASR: CER {timing.cer:.2f} > {max_cer:.2f}"


def _tokens(texts: list[str]) -> tuple[list[str], list[int]]:
    """The normalised tokens of each text ("26" -> "twenty", "six"), and which text each came from."""
    tokens, owner = [], []
    for i, text in enumerate(texts):
        for token in normalize_text(text, spell_numbers=True).split():
            tokens.append(token)
            owner.append(i)
    return tokens, owner


def _timed(words: list[str], spans: list[Span]) -> tuple[Word, ...]:
    return tuple(Word(w, round(s, 3), round(e, 3)) for w, (s, e) in zip(words, spans))


def _last(owner: list[int], i: int) -> int:
    return len(owner) - 1 - owner[::-1].index(i)


def _share(span: Span, tokens: list[str]) -> list[Span]:
    """`span` cut into one piece per token, each as long as its share of the characters."""
    if not tokens:
        return []
    weights = np.cumsum([0] + [len(t) for t in tokens], dtype=float)
    edges = span[0] + (span[1] - span[0]) * weights / weights[-1]
    return [(float(a), float(b)) for a, b in itertools.pairwise(edges)]


def _token_spans(tokens: list[str], owner: list[int], spans: list[Span]) -> list[Span]:
    """A heard word's span shared among its tokens (Whisper's "26" is "twenty six" here)."""
    out: list[Span] = []
    for i, span in enumerate(spans):
        out += _share(span, [t for t, o in zip(tokens, owner) if o == i])
    return out


def _blocks(ref: list[str], hyp: list[str]) -> list[tuple[range, range]]:
    """The alignment as (ref tokens, hyp tokens) blocks: each equal pair alone, each run of edits merged into one."""
    blocks: list[tuple[range, range]] = []
    pending: tuple[int, int, int, int] | None = None
    for op in Levenshtein.opcodes(ref, hyp):
        if op.tag != "equal":
            start = pending or (op.src_start, op.src_end, op.dest_start, op.dest_end)
            pending = (start[0], op.src_end, start[2], op.dest_end)
            continue
        if pending:
            blocks.append((range(pending[0], pending[1]), range(pending[2], pending[3])))
            pending = None
        blocks += [(range(r, r + 1), range(h, h + 1))
                   for r, h in zip(range(op.src_start, op.src_end), range(op.dest_start, op.dest_end))]
    if pending:
        blocks.append((range(pending[0], pending[1]), range(pending[2], pending[3])))
    return blocks


def _pair(ref: list[str], hyp: list[str], hyp_spans: list[Span]) -> tuple[list[Span | None], list[bool]]:
    """Each transcript token's span from the heard tokens aligned with it (None where none is), and whether it was
    paired one to one. A run of edits with as many heard as transcript tokens pairs them in order (misheard words);
    an uneven run shares the heard tokens' stretch among the transcript's by characters."""
    spans: list[Span | None] = [None] * len(ref)
    paired = [False] * len(ref)
    for refs, hyps in _blocks(ref, hyp):
        if not refs or not hyps:
            continue  # heard words the transcript lacks are ignored; transcript words not heard are filled later
        if len(refs) == len(hyps):
            for r, h in zip(refs, hyps):
                spans[r], paired[r] = hyp_spans[h], True
            continue
        stretch = (hyp_spans[hyps[0]][0], hyp_spans[hyps[-1]][1])
        for r, span in zip(refs, _share(stretch, [ref[r] for r in refs])):
            spans[r] = span
    return spans, paired


def _fill_gaps(spans: list[Span | None], ref: list[str], seconds: float) -> list[Span]:
    """Untimed tokens share the gap between their timed neighbours by characters; where that gap is too narrow
    (Whisper's words often touch), the neighbours give up part of their time too."""
    out = list(spans)
    i = 0
    while i < len(out):
        if out[i] is not None:
            i += 1
            continue
        j = i
        while j < len(out) and out[j] is None:
            j += 1
        lo = out[i - 1][1] if i > 0 else 0.0
        hi = out[j][0] if j < len(out) else seconds
        first, last = i, j
        if hi - lo < MIN_WORD_S * (j - i):
            first, last = max(i - 1, 0), min(j + 1, len(out))
            lo = out[first][0] if first < i else 0.0
            hi = out[last - 1][1] if last > j else seconds
        out[first:last] = _share((lo, max(hi, lo)), ref[first:last])
        i = last
    return out


def _monotone(spans: list[Span], seconds: float) -> list[Span]:
    """Spans in order, none overlapping the one before it, all within [0, seconds]."""
    out, prev = [], 0.0
    for start, end in spans:
        start = min(max(start, prev, 0.0), seconds)
        end = min(max(end, start), seconds)
        out.append((start, end))
        prev = end
    return out
