"""Spoken sentences whose word boundaries are known by construction, for judging word timings (the tests and
benchmarks/word_timings.py). Two constructions, both espeak-ng in a few voices, 16 kHz, with 0.3 s of silence before
and after and white noise at 40 dB SNR over all of it (a clean recording: a pause is noise, not digital silence):

- running speech (`sentence_clip`): the sentence synthesized whole, through libespeak-ng, which reports the sample
  where each word starts. A word ends where the next starts. espeak-ng runs some short words into the word before
  ("in the" is one word to it) and reports no start for them; the boundary before such a word is not scored.
- words laid end to end (`word_clip`): each word synthesized alone (cached TTS) and trimmed to its sound
  (`trim_bounds` with no margin: from the first to the last 10-ms frame above -40 dB of its loudest), sometimes with a
  pause between two words (50-250 ms on a third of the boundaries). Exact, but an odd signal: every word is a
  sentence of its own, with its own falling pitch and a long quiet tail.

A boundary's error is the later of the errors of the first word's end and the next word's start: at a pause both of
its edges have to be found, which is what cutting the audio into word-level spans needs; where the words touch, it
is the error of the one point they share.
"""

from __future__ import annotations

import ctypes
import functools
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salad_core.audio import SAMPLE_RATE, add_noise, load_audio, resample
from salad_core.clips import trim_bounds
from salad_core.speech_data.utterance import Word
from salad_core.text import stable_hash
from salad_core.tts import VoiceSpec, synthesize
from salad_core.tts.espeak import BASE_WPM

PAUSES_S = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.12, 0.25)  # drawn per boundary: two thirds touch
EDGE_S = 0.3
SNR_DB = 40.0
VOICES = (VoiceSpec("espeak", "en-us"), VoiceSpec("espeak", "en-gb", 1.15), VoiceSpec("espeak", "en-us+f3"),
          VoiceSpec("espeak", "en-gb-scotland+m3", 0.9), VoiceSpec("espeak", "en-029+f2", 1.1))

# Held out: the tests score these; benchmarks/word_timings.py, where the snapping was tuned, reads DEV_SENTENCES.
TEST_SENTENCES = (
    "The old bridge crossed the river below the mill.",
    "Seven children waited quietly for the evening train.",
    "Please bring the blue folder to my office tomorrow.",
    "A cold wind swept across the empty harbour.",
    "Nobody expected the small team to win the final.",
    "She painted the kitchen walls a pale yellow.",
    "Farmers planted wheat and barley in the northern fields.",
    "The library opens at nine on weekdays.",
    "My brother fixed the broken bicycle last summer.",
    "Heavy rain flooded the streets near the station.",
    "The museum keeps a famous map of the coast.",
    "We counted forty birds on the frozen lake.",
    "His grandmother tells wonderful stories about the war.",
    "The doctor asked him to rest for a week.",
    "Bright lights filled the square during the festival.",
    "They sold their house and moved to the mountains.",
)
DEV_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Our teacher read a long poem about the sea.",
    "The baker sells fresh bread every morning.",
    "Dark clouds gathered over the distant hills.",
    "Two sailors repaired the torn sail before dawn.",
    "The garden behind the school is full of roses.",
    "Children played football in the park until sunset.",
    "A tall man in a grey coat opened the door.",
    "The village market is busy on Saturday afternoons.",
    "She wrote a letter to her friend in Spain.",
    "Thunder woke the whole family in the night.",
    "The pilot landed the plane safely in the storm.",
)


@dataclass(frozen=True)
class Clip:
    text: str
    audio: np.ndarray
    boundaries: tuple[tuple[int, float, float], ...]  # (k, true end of word k, true start of word k + 1), seconds


def _finish(sentence: str, audio: np.ndarray) -> np.ndarray:
    edge = np.zeros(round(EDGE_S * SAMPLE_RATE), np.float32)
    return add_noise(np.concatenate([edge, audio, edge]), SNR_DB, stable_hash("noise", sentence) % 2**32)


def word_clip(sentence: str, voice: VoiceSpec) -> Clip:
    """The sentence's words spoken one by one in `voice` and laid end to end (see the module docstring)."""
    pieces, spans, at = [], [], EDGE_S
    words = sentence.split()
    for i, word in enumerate(words):
        raw = load_audio(synthesize(word, voice))
        start, end = trim_bounds(raw, margin_s=0.0)
        pause = PAUSES_S[stable_hash(sentence, voice.key(), str(i)) % len(PAUSES_S)] if i < len(words) - 1 else 0
        pieces += [raw[start:end], np.zeros(round(pause * SAMPLE_RATE), np.float32)]
        spans.append((at, at + (end - start) / SAMPLE_RATE))
        at += (end - start + round(pause * SAMPLE_RATE)) / SAMPLE_RATE
    bounds = tuple((k, spans[k][1], spans[k + 1][0]) for k in range(len(words) - 1))
    return Clip(sentence, _finish(sentence, np.concatenate(pieces)), bounds)


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_WORD_EVENT, _LIST_END, _SYNCHRONOUS, _RATE, _POS_CHARACTER = 1, 0, 2, 1, 1


class _Espeak:
    """libespeak-ng through ctypes: the samples of a synthesis and the (character, sample) where each word starts."""

    def __init__(self):
        self.lib = ctypes.CDLL("libespeak-ng.so.1")
        self.rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, None, 0)
        self.chunks: list[np.ndarray] = []
        self.starts: dict[int, int] = {}
        self._callback = _CALLBACK(self._heard)  # kept: the library calls it until the process ends
        self.lib.espeak_SetSynthCallback(self._callback)

    def _heard(self, wav, count: int, events) -> int:
        if count > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _LIST_END:
            if events[i].type == _WORD_EVENT:
                self.starts[events[i].text_position - 1] = events[i].sample
            i += 1
        return 0

    def speak(self, text: str, voice: VoiceSpec) -> tuple[np.ndarray, dict[int, float]]:
        self.chunks, self.starts = [], {}
        self.lib.espeak_SetVoiceByName(voice.voice.encode())
        self.lib.espeak_SetParameter(_RATE, round(BASE_WPM * voice.speed), 0)
        data = text.encode()  # ASCII sentences: a byte offset is a character offset
        self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self.chunks).astype(np.float32) / 32768
        return resample(audio, self.rate), {char: sample / self.rate for char, sample in self.starts.items()}


@functools.cache
def _espeak() -> _Espeak:
    return _Espeak()


def sentence_clip(sentence: str, voice: VoiceSpec) -> Clip:
    """The sentence spoken whole in `voice`, with the word starts the synthesizer reports (see the module docstring)."""
    return sentence_clips([(sentence, voice)])[0]


def sentence_clips(requests: list[tuple[str, VoiceSpec]]) -> list[Clip]:
    """`sentence_clip` of each request, made in a fresh Python process: libespeak-ng loaded through ctypes ends its
    process when another copy of the library (salad's espeak engine's) was loaded there first, as earlier tests in a
    session do; and a multiprocessing child would re-run whatever module a test left as `__main__`."""
    with tempfile.TemporaryDirectory() as folder:
        asked, made = Path(folder) / "asked.json", Path(folder) / "clips.npz"
        asked.write_text(json.dumps([[text, voice.voice, voice.speed] for text, voice in requests]))
        done = subprocess.run([sys.executable, "-m", "tests.timing_clips", str(asked), str(made)],
                              cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
        if done.returncode:
            raise OSError(f"espeak-ng's running speech could not be made: {done.stderr.strip()[-500:]}")
        arrays = np.load(made)
        return [Clip(text, arrays[f"audio{k}"], tuple((int(b[0]), float(b[1]), float(b[2]))
                                                      for b in arrays[f"bounds{k}"].reshape(-1, 3)))
                for k, (text, _) in enumerate(requests)]


def _sentence_clip_here(sentence: str, voice: VoiceSpec) -> Clip:
    audio, starts = _espeak().speak(sentence, voice)
    offsets = [i for i, ch in enumerate(sentence) if not ch.isspace() and (i == 0 or sentence[i - 1].isspace())]
    known = [(k, EDGE_S + starts[at]) for k, at in enumerate(offsets) if k and at in starts]
    bounds = tuple((k - 1, start, start) for k, start in known)
    return Clip(sentence, _finish(sentence, audio), bounds)


def build_clips(sentences: tuple[str, ...], running: bool = True) -> list[Clip]:
    """Each sentence in one of the voices, in turn: running speech, or words laid end to end."""
    requests = [(s, VOICES[i % len(VOICES)]) for i, s in enumerate(sentences)]
    return sentence_clips(requests) if running else [word_clip(s, voice) for s, voice in requests]


def boundary_errors(words: tuple[Word, ...], clip: Clip) -> list[float]:
    """The error (seconds) of each scored boundary between two consecutive words (see the module docstring)."""
    assert len(words) == len(clip.text.split()), (words, clip.text)
    return [max(abs(words[k].end - end), abs(words[k + 1].start - start)) for k, end, start in clip.boundaries]


def share_within(errors: list[float], tolerance_s: float) -> float:
    return float(np.mean(np.asarray(errors) <= tolerance_s + 1e-9))


if __name__ == "__main__":  # sentence_clips' process: asked.json in, clips.npz out
    asked, made = sys.argv[1:3]
    clips = [_sentence_clip_here(text, VoiceSpec("espeak", voice, speed))
             for text, voice, speed in json.loads(Path(asked).read_text())]
    np.savez(made, **{f"audio{k}": c.audio for k, c in enumerate(clips)},
             **{f"bounds{k}": np.array(c.boundaries, dtype=np.float64).reshape(-1, 3) for k, c in enumerate(clips)})
