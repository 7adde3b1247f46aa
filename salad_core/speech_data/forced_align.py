"""Forced alignment of a known transcript to its audio with PocketSphinx (offline, its en-us acoustic model).

Whisper only hears; where its words start is a by-product of its cross-attention, 50-150 ms off (timings.py). A forced
aligner is told the words and only searches where each one starts and ends: the transcript becomes a chain of the
words' phone models, with optional silences between them, and a Viterbi pass lays the chain over the audio at 100
frames a second. On espeak-ng speech with known boundaries (benchmarks/word_timings.py) it puts nearly every word start
within 40 ms, where Whisper base manages under half.

The acoustic model was trained on recordings, which always have a noise floor; on clean synthetic speech, with its
digital silences, the search fails more often than not (37 of 70 espeak-ng utterances). The aligner therefore hears a
copy of the audio with white noise `NOISE_FLOORS_DB` below its power (seeded: the same audio, the same times), and
where the first level fails, the next.

A transcript word is cut into the aligner's tokens (lower case, apostrophes kept as the dictionary spells them, digits
spelled out, other punctuation dropped); a token the dictionary lacks is given espeak-ng's pronunciation (pronounce.py).
`align` returns None, and the caller falls back to Whisper's times, when a token has no pronunciation or the search
does not reach the end of the transcript (it happens: one voice's "festival" in the held-out clips).
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from pathlib import Path

import numpy as np

from salad_core.assets import AssetError
from salad_core.audio import SAMPLE_RATE, add_noise
from salad_core.speech_data.pronounce import espeak_arpabet
from salad_core.text import spell_numbers

FRAMES_PER_S = 100  # PocketSphinx's frame rate
# Prior of a pause between two words (PocketSphinx's default, 0.005, is for recognition). Fitted on the development
# sentences of benchmarks/word_timings.py: 0.1 found the pauses between words laid end to end (83 % of their
# boundaries within 80 ms before the pause snap, against 72 % at 0.005), and cost one boundary of 86 in running speech.
SILENCE_PROB = 0.1
# Noise added under the audio, in dB below its power, tried in turn. Fitted on clean espeak-ng utterances of the
# development sentences and the stream test's (70): 40 dB aligned 68 and 30 dB one more; on the noisy development clips
# of benchmarks/word_timings.py 40 dB kept the accuracy (30 dB cost 2 points on words with pauses between them).
NOISE_FLOORS_DB = (40.0, 30.0)
FILLER = re.compile(r"^(<.*>|\[.*\])$")  # <s>, </s>, <sil>, [NOISE]: the aligner's own units, not words
ALTERNATE = re.compile(r"\(\d+\)$")  # "read(2)": the dictionary's second pronunciation of "read"

Span = tuple[float, float]


def sphinx_tokens(word: str) -> list[str]:
    """The aligner's tokens of one transcript word: "Don't" -> ["don't"], "26," -> ["twenty", "six"],
    "well-known" -> ["well", "known"]; none for a word with nothing spoken in it ("—")."""
    text = unicodedata.normalize("NFKC", word).lower().replace("\u2019", "'")
    text = spell_numbers("".join(ch if ch.isalnum() or ch == "'" else " " for ch in text))
    return [token.strip("'") for token in text.split() if token.strip("'")]


class SphinxAligner:
    """PocketSphinx's en-us acoustic model and dictionary in alignment mode, loaded on first use (0.2-0.7 s). One
    decoder is not re-entrant, so calls are serialised; each data worker (a process) holds its own."""

    def __init__(self, silence_prob: float = SILENCE_PROB):
        self.silence_prob = silence_prob
        self._decoder = None
        self._lock = threading.Lock()

    def align(self, audio: np.ndarray, words: list[str]) -> list[Span] | None:
        """(start, end) seconds of each of `words` in 16 kHz mono `audio`, or None where they cannot be aligned."""
        tokens = [sphinx_tokens(word) for word in words]
        flat = [token for group in tokens for token in group]
        if not flat or not all(tokens):
            return None
        with self._lock:
            known = all(self._known(token) for token in flat)
            found = self._search(np.asarray(audio, np.float32), flat) if known else None
        return None if found is None else _word_spans(tokens, found)

    def _search(self, audio: np.ndarray, tokens: list[str]) -> list[Span] | None:
        """The tokens' spans at the first noise floor where the search reaches the end of the transcript."""
        for floor_db in NOISE_FLOORS_DB:
            found = self._decode(add_noise(audio, floor_db, seed=0), tokens)
            if found is not None:
                return found
        return None

    def _known(self, token: str) -> bool:
        """Whether the dictionary has `token`, after adding espeak-ng's pronunciation where it had none."""
        decoder = self._load()
        if decoder.lookup_word(token) is not None:
            return True
        phones = espeak_arpabet(token)
        if phones is None:
            return False
        try:
            decoder.add_word(token, phones, True)
        except RuntimeError:
            return False
        return True

    def _decode(self, audio: np.ndarray, tokens: list[str]) -> list[Span] | None:
        """The span of each token, in order; None when the best path does not cover all of them."""
        decoder = self._load()
        try:
            decoder.set_align_text(" ".join(tokens))
            pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
        except RuntimeError:
            return None
        segments = [(ALTERNATE.sub("", s.word), s.start_frame, s.end_frame) for s in decoder.seg() or ()]
        segments = [s for s in segments if not FILLER.match(s[0])]
        if [word for word, _, _ in segments] != tokens:
            return None
        seconds = len(audio) / SAMPLE_RATE
        return [(min(first / FRAMES_PER_S, seconds), min((last + 1) / FRAMES_PER_S, seconds))
                for _, first, last in segments]

    def _load(self):
        if self._decoder is None:
            self._decoder = _decoder(self.silence_prob)
        return self._decoder


def _word_spans(tokens: list[list[str]], found: list[Span]) -> list[Span]:
    """Each word's span: from its first token's start to its last token's end."""
    spans, at = [], 0
    for group in tokens:
        spans.append((found[at][0], found[at + len(group) - 1][1]))
        at += len(group)
    return spans


def _decoder(silence_prob: float):
    """A PocketSphinx decoder for alignment: the acoustic model and dictionary, no language model, quiet."""
    try:
        import pocketsphinx
    except ImportError as err:
        raise AssetError("word timings need PocketSphinx's forced alignment, and pocketsphinx is not installed. "
                         "Fix: pip install --no-deps pocketsphinx==5.1.1 (requirements-nodeps.txt)") from err
    model = Path(pocketsphinx.get_model_path()) / "en-us"
    return pocketsphinx.Decoder(hmm=str(model / "en-us"), dict=str(model / "cmudict-en-us.dict"), lm=None,
                                loglevel="FATAL", silprob=silence_prob)


@functools.cache
def default_aligner() -> SphinxAligner:
    """The process's aligner (a data worker loads its own on first use)."""
    return SphinxAligner()
