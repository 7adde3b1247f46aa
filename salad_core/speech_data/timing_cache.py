"""Word timings kept on disk, so each utterance is aligned and heard by Whisper once, whichever run or process asks
again.

A result's address is sha256 over (the audio's samples, the transcript, the ASR model and beam, whether boundaries
were snapped, the method, `TIMINGS_VERSION`): one small JSON file under `cache_dir("timings")`. Files are written to
a temporary name and renamed into place, so two processes timing the same utterance both succeed and readers never
see half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from salad_core.paths import cache_dir
from salad_core.speech_data.timings import Aligner, Timing, WordASR, word_timings

# Raise when the alignment or the snapping changes, so older results are recomputed. 2: PocketSphinx's forced alignment.
TIMINGS_VERSION = 2


@dataclass(frozen=True)
class TimingCache:
    root: Path = field(default_factory=lambda: cache_dir("timings"))

    def address(self, audio: np.ndarray, transcript: str, asr: WordASR, snap: bool, method: str = "aligned") -> str:
        samples = hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()
        recogniser = [asr.model_name, getattr(asr, "beam_size", None)]
        payload = json.dumps([TIMINGS_VERSION, samples, transcript, recogniser, snap, method])
        return hashlib.sha256(payload.encode()).hexdigest()

    def path_for(self, digest: str) -> Path:
        return Path(self.root) / digest[:2] / f"{digest}.json"

    def read(self, digest: str) -> Timing | None:
        try:
            return Timing.from_json(json.loads(self.path_for(digest).read_text()))
        except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, ValueError):
            return None  # absent, or unreadable: computed again and rewritten

    def write(self, digest: str, timing: Timing) -> None:
        path = self.path_for(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{digest}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_text(json.dumps(timing.to_json()))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def cached_word_timings(audio: np.ndarray, transcript: str, asr: WordASR, *, snap: bool = True,
                        method: str = "aligned", aligner: Aligner | None = None,
                        cache: TimingCache | None = None) -> Timing:
    """`word_timings`, read from the cache when this audio and transcript were timed before by the same ASR and
    method (a custom `aligner` is the tests' stand-in for PocketSphinx: not part of the address)."""
    cache = cache or TimingCache()
    digest = cache.address(audio, transcript, asr, snap, method)
    timing = cache.read(digest)
    if timing is None:
        timing = word_timings(audio, transcript, asr, snap=snap, method=method, aligner=aligner)
        cache.write(digest, timing)
    return timing
