"""Word boundaries moved to the pauses between the words: Whisper's word times are often 50-150 ms off, and the
forced aligner sometimes lets a pause into the word beside it, while the signal itself says where a speaker paused
(on words laid end to end with pauses, benchmarks/word_timings.py, the snap takes the aligner from 83 % to 95 % of
boundaries within 80 ms on the development sentences, and changes nothing on running speech there).

A pause is a run of at least `MIN_PAUSE_S` of 10-ms frames near the utterance's noise floor (the level of its
quietest tenth). A boundary between two words that has a pause within `SNAP_WINDOW_S` of where the ASR put it takes
that pause's edges (the nearest pause when there are several): the first word ends where the pause starts, the next
begins where it ends. Where there is no pause, the ASR's boundary stays: in running speech the dips between words
are no deeper than those inside them.
"""

from __future__ import annotations

import numpy as np

from salad_core.audio import SAMPLE_RATE

FRAME_S = 0.01
# How far from the ASR's boundary a pause may be. Chosen on the development sentences of benchmarks/word_timings.py as
# the widest window that costs nothing on running speech (0.15 s moved boundaries into the closures of stops there),
# while on words with pauses between them it takes the share within 80 ms from 40 % to 66 % (Whisper base).
SNAP_WINDOW_S = 0.1
FLOOR_PERCENTILE = 10  # the noise floor: most utterances are this much silence at least (their edges)
PAUSE_DB = 6.0  # a frame within this of the noise floor is silence, not a quiet sound of a word
MIN_PAUSE_S = 0.06  # shorter silences are the closures of stops ("p", "t", "k") inside words
MIN_WORD_S = 0.04  # a snapped word keeps at least this long

Span = tuple[float, float]


def frame_levels(audio: np.ndarray) -> np.ndarray:
    """Level of each 10-ms frame in dB below the loudest frame (0 dB)."""
    hop = round(FRAME_S * SAMPLE_RATE)
    n = max(len(audio) // hop, 1)
    frames = np.zeros(n * hop, np.float64)
    frames[: min(len(audio), n * hop)] = audio[: n * hop]
    rms = np.sqrt(np.mean(frames.reshape(n, hop) ** 2, axis=1) + 1e-12)
    return 20 * np.log10(rms / rms.max())


def pauses(audio: np.ndarray) -> list[Span]:
    """(start, end) seconds of each pause in the audio (see the module docstring)."""
    levels = frame_levels(audio)
    quiet = levels <= np.percentile(levels, FLOOR_PERCENTILE) + PAUSE_DB
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    runs = [(a * FRAME_S, b * FRAME_S) for a, b in zip(edges[::2], edges[1::2])]
    return [(a, b) for a, b in runs if b - a >= MIN_PAUSE_S - 1e-9]


def snap_boundaries(audio: np.ndarray, bounds: list[Span]) -> list[Span]:
    """`bounds` (start, end of each word, in order) with every boundary between two words that has a pause near it
    moved to that pause's edges; the first start and the last end stay where they are."""
    found = pauses(audio)
    out = [list(b) for b in bounds]
    for k in range(len(out) - 1):
        left, right = out[k], out[k + 1]
        pause = _nearest(found, (left[1], right[0]), (left[0] + MIN_WORD_S, right[1] - MIN_WORD_S))
        if pause is not None:
            left[1], right[0] = pause
    return [(start, end) for start, end in out]


def _nearest(found: list[Span], asr: Span, limits: Span) -> Span | None:
    """The pause nearest the ASR's boundary `asr` within `SNAP_WINDOW_S` of it, cut to `limits`; None if none."""
    best, best_distance = None, SNAP_WINDOW_S
    for start, end in found:
        start, end = max(start, limits[0]), min(end, limits[1])
        distance = max(start - asr[1], asr[0] - end, 0.0)
        if end > start and distance <= best_distance:
            best, best_distance = (start, end), distance
    return best
