"""The cascade's speech recogniser (Whisper through faster-whisper / CTranslate2) and the error rates that score it.

`Transcriber` turns 16 kHz speech into text; in the ASR → LLM cascade baseline (paper §5, Whisper-large-v3 there)
its output replaces the speech. `normalize_text`, `word_error_rate` and `char_error_rate` are the project's only
definitions of WER/CER (TTS intelligibility filtering and benchmarks import them from here).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import jiwer
import numpy as np
from tqdm import tqdm

from salad_core.assets import PACKAGED_WHISPER, AssetError, canonical_name, whisper_ct2_dir
from salad_core.audio import SAMPLE_RATE, load_audio
from salad_core.text import spell_numbers as spelled

# Beam search of width 5 (faster-whisper's default and OpenAI's beam setting) rather than greedy: on 2 CPU cores it
# costs ~1.2-1.3x the time of greedy decoding on short TTS clips and halved tiny.en's WER on them (0.22 -> 0.11).
DEFAULT_BEAM_SIZE = 5


def resolve_model(model: str) -> Path:
    """A CTranslate2 Whisper folder for a packaged name, a local folder, or a faster-whisper name cached offline."""
    if canonical_name(model) in PACKAGED_WHISPER:
        return whisper_ct2_dir(model)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise AssetError(f"ASR model folder {path} has no model.bin. Fix: pass a CTranslate2 Whisper folder "
                             "(made with ct2-transformers-converter) or a packaged name such as 'whisper-base'.")
        return path
    from faster_whisper.utils import download_model

    packaged = "whisper-base, whisper-tiny.en"
    try:
        return Path(download_model(model, local_files_only=True))
    except ValueError as err:  # not a faster-whisper size name
        raise AssetError(
            f"ASR model '{model}' is neither a packaged name ({packaged}), a folder, nor a faster-whisper model "
            f"name ({err}). Fix: pass one of those or a local CTranslate2 Whisper folder."
        ) from err
    except Exception as err:  # a valid name that is not in the local Hugging Face cache
        raise AssetError(
            f"ASR model '{model}' is not available offline ({type(err).__name__}). Fix: download it once on a "
            f"connected machine (faster_whisper.WhisperModel('{model}')) or pass a local CTranslate2 folder; "
            f"packaged here: {packaged}."
        ) from err


class Transcriber:
    """English transcription with a Whisper model on the CPU (int8), no VAD, deterministic (temperature 0)."""

    def __init__(self, model: str = "whisper-base", *, beam_size: int = DEFAULT_BEAM_SIZE, threads: int = 0):
        from faster_whisper import WhisperModel

        self.model_name = model
        self.path = resolve_model(model)
        self.beam_size = beam_size
        self._model = WhisperModel(str(self.path), device="cpu", compute_type="int8", cpu_threads=threads)

    def transcribe(self, audio: np.ndarray) -> str:
        """Text of 16 kHz float32 mono speech (up to 30 s; longer audio is cut by `load_audio`)."""
        return " ".join(segment.text.strip() for segment in self._segments(audio)).strip()

    def words(self, audio: np.ndarray) -> list[tuple[str, float, float]]:
        """(word, start s, end s) of each word heard, from Whisper's cross-attention alignment; the words joined by
        spaces are `transcribe`'s text (the decoding is the same, the alignment is a pass after it)."""
        heard = [w for segment in self._segments(audio, word_timestamps=True) for w in segment.words or ()]
        return [(w.word.strip(), float(w.start), float(w.end)) for w in heard if w.word.strip()]

    def _segments(self, audio: np.ndarray, word_timestamps: bool = False) -> list:
        audio = load_audio(np.asarray(audio, np.float32), sample_rate=SAMPLE_RATE, name="audio to transcribe")
        segments, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=self.beam_size,
            temperature=0.0,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            word_timestamps=word_timestamps,
        )
        return list(segments)

    def transcribe_many(self, audios: Sequence[np.ndarray], progress: bool = True) -> list[str]:
        return [self.transcribe(a) for a in tqdm(audios, disable=not progress, file=sys.stderr, desc="asr")]


def normalize_text(text: str, spell_numbers: bool = False) -> str:
    """Lowercase, apostrophes dropped, other punctuation and symbols to spaces; numbers left as written, or with
    `spell_numbers` written out ("26" -> "twenty six"), for references that spell them as TTS input does."""
    text = unicodedata.normalize("NFKC", text).lower().replace("'", "").replace("\u2019", "")
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    if spell_numbers:
        text = spelled(text)
    return re.sub(r"\s+", " ", text).strip()


def _normalized_pairs(refs: str | Sequence[str], hyps: str | Sequence[str],
                      spell_numbers: bool = False) -> tuple[list[str], list[str]]:
    refs, hyps = ([refs] if isinstance(refs, str) else list(refs)), ([hyps] if isinstance(hyps, str) else list(hyps))
    if len(refs) != len(hyps):
        raise ValueError(
            f"error rate: {len(refs)} references but {len(hyps)} hypotheses. Fix: pass one hypothesis per reference."
        )
    refs = [normalize_text(r, spell_numbers) for r in refs]
    hyps = [normalize_text(h, spell_numbers) for h in hyps]
    if not refs or not any(refs):
        raise ValueError("error rate: the references are empty after normalisation. Fix: pass references with words.")
    return refs, hyps


def word_error_rate(refs: str | Sequence[str], hyps: str | Sequence[str]) -> float:
    """Corpus WER: total word edits over total reference words, after `normalize_text`."""
    refs, hyps = _normalized_pairs(refs, hyps)
    return float(jiwer.wer(refs, hyps))


def char_error_rate(refs: str | Sequence[str], hyps: str | Sequence[str], spell_numbers: bool = False) -> float:
    """Corpus CER: total character edits (spaces included) over total reference characters, after `normalize_text`."""
    refs, hyps = _normalized_pairs(refs, hyps, spell_numbers)
    return float(jiwer.cer(refs, hyps))
