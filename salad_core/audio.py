"""Audio in and out: every waveform salad reads passes through `load_audio`, and leaves through `save_audio`.

Internally all audio is float32 mono at 16 kHz in [-1, 1] (the rate of Whisper and of the speech encoders).
`load_audio` accepts a path, the bytes of an encoded file (an upload) or an array with its sample rate; it
downmixes, resamples and truncates, and refuses what cannot be speech (undecodable, empty, silent, non-finite)
with an `AudioError` that names the input and the fix.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from salad_core.errors import InputError

SAMPLE_RATE = 16000
SILENCE_PEAK = 1e-4  # below this peak amplitude a clip holds nothing a recogniser could hear
_FORMATS = {".wav": "WAV", ".flac": "FLAC"}

AudioSource = str | Path | bytes | np.ndarray


class AudioError(InputError):
    """Audio that cannot be used; the message names the input and says how to fix it."""


def resample(audio: np.ndarray, orig_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling (anti-aliased) of a 1-D signal; a no-op when the rates agree."""
    if orig_rate == target_rate:
        return audio.astype(np.float32, copy=False)
    from scipy.signal import resample_poly  # imported here: scipy.signal takes ~1 s to import, paid only if needed

    g = math.gcd(int(orig_rate), int(target_rate))
    out = resample_poly(audio, target_rate // g, orig_rate // g)
    return out.astype(np.float32)


def _to_float(audio: np.ndarray, name: str) -> np.ndarray:
    """Integer PCM is scaled by its full range; floats pass unchanged."""
    if np.issubdtype(audio.dtype, np.integer):
        return audio.astype(np.float32) / float(np.iinfo(audio.dtype).max + 1)
    if np.issubdtype(audio.dtype, np.floating):
        return audio.astype(np.float32, copy=False)
    raise AudioError(f"{name}: unsupported sample type {audio.dtype}. Fix: pass float or integer PCM samples.")


def _to_mono(audio: np.ndarray, name: str) -> np.ndarray:
    """Average the channels. 2-D arrays are (samples, channels), or (channels, samples) when that is clearly meant."""
    if audio.ndim == 1:
        return audio
    if audio.ndim != 2:
        fix = "Fix: pass (samples,) or (samples, channels)."
        raise AudioError(f"{name}: expected a 1-D or 2-D array, got shape {audio.shape}. {fix}")
    if audio.shape[0] <= 8 < audio.shape[1]:  # torchaudio-style (channels, samples)
        audio = audio.T
    return audio.mean(axis=1)


def _read_encoded(source: str | Path | bytes, name: str, max_seconds: float) -> tuple[np.ndarray, int, float]:
    """Decode a file or its bytes: (samples, channels) of at most `max_seconds`, the rate, the full length in s."""
    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise AudioError(f"{name}: no such file. Fix: check the path.")
    handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        with sf.SoundFile(handle) as f:
            limit = math.ceil(max_seconds * f.samplerate)
            audio = f.read(frames=min(f.frames, limit), dtype="float32", always_2d=True)
            return audio, f.samplerate, f.frames / f.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(
            f"{name}: cannot decode the audio ({str(err).rsplit(': ', 1)[-1]}). "
            "Fix: upload a WAV, FLAC or OGG file (16 kHz mono is best)."
        ) from err


def _truncate(audio: np.ndarray, rate: int, seconds: float, max_seconds: float, name: str) -> np.ndarray:
    if seconds <= max_seconds:
        return audio
    warnings.warn(
        f"{name}: {seconds:.1f} s long; truncated to the first {max_seconds:g} s (raise max_seconds to keep more).",
        stacklevel=3,
    )
    return audio[: int(round(max_seconds * rate))]


def _check_content(audio: np.ndarray, name: str) -> None:
    if audio.size == 0:
        raise AudioError(f"{name} is empty (0 samples). Fix: record or upload a clip that contains speech.")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{name} contains NaN or infinite samples. Fix: re-export the audio from its source.")
    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise AudioError(
            f"{name} is silent (peak below {SILENCE_PEAK:g}). Fix: check the microphone or the file's gain."
        )


def _default_name(source: AudioSource) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return "uploaded audio" if isinstance(source, bytes) else "audio array"


def load_audio(
    source: AudioSource,
    *,
    sample_rate: int | None = None,
    name: str | None = None,
    max_seconds: float = 30.0,
) -> np.ndarray:
    """Float32 mono 16 kHz audio in [-1, 1] from a path, encoded bytes (wav/flac/ogg) or an array.

    `sample_rate` is required for arrays and ignored for encoded input (the file header states it). Multichannel
    audio is averaged to mono; clips longer than `max_seconds` are truncated with a warning.
    """
    name = name or _default_name(source)
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioError(f"{name}: a raw array needs its sample rate. Fix: load_audio(array, sample_rate=...).")
        audio, rate = _to_mono(_to_float(source, name), name), int(sample_rate)
        seconds = len(audio) / rate if rate > 0 else 0.0
    elif isinstance(source, (str, Path, bytes)):
        audio, rate, seconds = _read_encoded(source, name, max_seconds)
        audio = _to_mono(audio, name)
    else:
        kind = type(source).__name__
        raise AudioError(f"{name}: unsupported input type {kind}. Fix: pass a path, bytes or a numpy array.")
    if rate <= 0:
        raise AudioError(f"{name}: invalid sample rate {rate}. Fix: pass the rate the audio was recorded at.")
    audio = _truncate(audio, rate, seconds, max_seconds, name)
    _check_content(audio, name)
    out = resample(audio, rate)[: int(round(max_seconds * SAMPLE_RATE))]
    return np.clip(out, -1.0, 1.0).astype(np.float32, copy=False)


def add_noise(audio: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """`audio` plus white Gaussian noise at `snr_db` below its power, from a seeded generator."""
    power = float(np.mean(audio.astype(np.float64) ** 2)) + 1e-12
    noise = np.random.default_rng(seed).standard_normal(len(audio)) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(audio + noise, -1.0, 1.0).astype(np.float32)


def _checked_16k(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise AudioError(
            f"audio to save must be 1-D mono at {SAMPLE_RATE} Hz, got shape {audio.shape}. Fix: load_audio() it first."
        )
    return np.clip(_to_float(audio, "audio to save"), -1.0, 1.0)


def save_audio(path: str | Path, audio: np.ndarray) -> Path:
    """Write 16 kHz mono 16-bit audio as FLAC or WAV, chosen by the file suffix."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: unsupported suffix '{path.suffix}'. Fix: use .flac or .wav.")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), _checked_16k(audio), SAMPLE_RATE, format=fmt, subtype="PCM_16")
    return path
