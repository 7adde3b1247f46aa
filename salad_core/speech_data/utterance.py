"""One utterance of a user's speech corpus, as every source kind gives it: its transcript, its document and place in
it, where its audio is (decoded only when a training worker needs it), and the word timings the source carries.

A document is what its source says it is (a book chapter, a podcast episode, a speaker's session); consecutive
utterances of one document, in `pos` order, become one interleaved training document (text spans read, speech spans
heard). Audio is float32 mono 16 kHz once loaded, as everywhere in salad (`salad_core.audio`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from salad_core.audio import AudioError, load_audio

MAX_UTTERANCE_SECONDS = 30.0  # Whisper's window: a longer utterance is refused, not cut


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the utterance's audio
    end: float


@dataclass(frozen=True)
class AudioRef:
    """Where an utterance's samples are: a file (optionally a stretch of it), encoded bytes, or an array."""

    path: str | None = None
    data: bytes | None = field(default=None, repr=False)
    array: np.ndarray | None = field(default=None, repr=False, compare=False)
    sample_rate: int | None = None  # an array's rate; for a file or bytes, the rate its source declares (if any)
    offset: float = 0.0  # seconds into the file where the utterance starts
    duration: float | None = None  # seconds of it (None: to the end)

    def load(self, name: str) -> np.ndarray:
        """Float32 mono 16 kHz samples; an `AudioError` naming `name` (the row) and the fix when they cannot be."""
        if self.array is not None:
            samples, rate = self._stretch(np.asarray(self.array), self.sample_rate or 0), self.sample_rate
        else:
            samples, rate = self._read(name)
        if samples.size == 0:
            raise AudioError(f"{name}: the stretch at {self.offset:g} s of its audio is empty. Fix: check the row's "
                             f"offset and duration against the audio's length.")
        return load_audio(samples, sample_rate=rate, name=name, max_seconds=MAX_UTTERANCE_SECONDS)

    def _stretch(self, samples: np.ndarray, rate: int) -> np.ndarray:
        start = int(round(self.offset * rate))
        return samples[start : None if self.duration is None else start + int(round(self.duration * rate))]

    def _read(self, name: str) -> tuple[np.ndarray, int]:
        """Only the stretch is read (a Lhotse recording may be a whole book chapter)."""
        import soundfile as sf

        if self.path is None and self.data is None:
            raise AudioError(f"{name}: the row has no audio. Fix: give every row an audio file or samples.")
        if self.path is not None and not Path(self.path).is_file():
            raise AudioError(f"{name}: no audio file {self.path}. Fix: correct the path, or drop the row.")
        try:
            with sf.SoundFile(self.path if self.path is not None else io.BytesIO(self.data)) as f:
                rate = f.samplerate
                if self.sample_rate is not None and rate != self.sample_rate:
                    raise AudioError(f"{name}: the audio is at {rate} Hz where its source declares "
                                     f"{self.sample_rate} Hz. Fix: correct the declared rate, or resample the file.")
                start = int(round(self.offset * rate))
                if start >= f.frames:
                    return np.zeros(0, np.float32), rate
                f.seek(start)
                frames = -1 if self.duration is None else int(round(self.duration * rate))
                return f.read(frames=frames, dtype="float32"), rate
        except (sf.LibsndfileError, RuntimeError, TypeError) as err:
            raise AudioError(f"{name}: cannot decode its audio ({str(err).rsplit(': ', 1)[-1]}). Fix: convert it to "
                             f"WAV, FLAC or OGG, or drop the row.") from err


@dataclass(frozen=True)
class Utterance:
    utt_id: str  # unique within its source; named in every error about it
    doc: str  # the document it belongs to; its own id when the source has none
    pos: float  # its place in the document
    text: str  # the transcript
    audio: AudioRef
    seconds: float | None = None  # its length, when the source says it without decoding
    words: tuple[Word, ...] | None = None  # word timings the source carries (e.g. a Lhotse alignment)

    def load(self) -> np.ndarray:
        return self.audio.load(f"utterance {self.utt_id}")
