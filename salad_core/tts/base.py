"""What every text-to-speech engine shares: the voice spec, the engine protocol, errors and input checks.

An engine turns (text, voice, speed) into float32 mono 16 kHz audio. Engines load their models lazily, so building
one, listing its voices or reading its version is cheap; `version()` names everything that changes the sound (program
or package version and model digests) because it is part of every cached utterance's address.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from salad_core.assets import AssetError
from salad_core.audio import load_audio
from salad_core.errors import InputError

MIN_SPEED, MAX_SPEED = 0.5, 2.0  # the range every engine renders intelligibly (Kokoro refuses anything outside)
MAX_TTS_SECONDS = 600.0


class TTSError(InputError):
    """A bad synthesis request (unknown engine or voice, empty text, speed out of range) or a failed synthesis."""


class MissingProgramError(AssetError):
    """An engine's command-line program (a Debian package) is not installed."""

    def __init__(self, program: str, engine: str, apt_package: str | None = None):
        super().__init__(
            f"The TTS engine '{engine}' needs the program '{program}', which is not on PATH. "
            f"Fix: sudo apt-get install {apt_package or program}"
        )


@dataclass(frozen=True)
class VoiceSpec:
    """One way of speaking: an engine, one of its voices, and a speed factor (1.0 = the engine's normal rate)."""

    engine: str
    voice: str
    speed: float = 1.0

    def key(self) -> str:
        """Readable identifier, e.g. `espeak:en-us+f3@1.2`; `VoiceSpec.parse` reads it back."""
        return f"{self.engine}:{self.voice}@{self.speed:g}"

    @classmethod
    def parse(cls, key: str) -> VoiceSpec:
        """Read `engine:voice[@speed]`; the last '@' always starts the speed (write `kokoro:a+b@0.3@1` for blends)."""
        engine, sep, rest = key.partition(":")
        voice, at, speed = rest.rpartition("@")
        try:
            if sep and engine and rest:
                return cls(engine, voice, float(speed)) if at else cls(engine, rest)
        except ValueError:
            pass
        raise TTSError(f"voice spec '{key}' is not of the form engine:voice[@speed], e.g. 'espeak:en-us@1.2'")


@runtime_checkable
class TTSEngine(Protocol):
    name: str

    def voices(self) -> list[str]:
        """The named voices (engines may accept more forms, e.g. Kokoro blends; see `check_voice`)."""
        ...

    def check_voice(self, voice: str) -> str:
        """The canonical form of `voice`, or `TTSError` naming the voices there are."""
        ...

    def synthesize(self, text: str, voice: str, speed: float = 1.0) -> np.ndarray:
        """float32 mono 16 kHz audio in [-1, 1]."""
        ...

    def version(self) -> str:
        """Everything that changes the output: program/package version and model digests."""
        ...


def check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise TTSError(f"text to synthesize is empty ({text!r}). Fix: pass a sentence with words in it.")
    return text.strip()


def check_speed(speed: float) -> float:
    if not MIN_SPEED <= float(speed) <= MAX_SPEED:
        raise TTSError(f"speed {speed} is outside [{MIN_SPEED}, {MAX_SPEED}]. Fix: pick a factor in that range.")
    return float(speed)


def unknown_voice(engine: str, voice: str, voices: list[str], hint: str = "") -> TTSError:
    shown = ", ".join(voices[:12]) + (f", ... ({len(voices)} in all)" if len(voices) > 12 else "")
    return TTSError(
        f"TTS engine '{engine}' has no voice '{voice}'. Voices: {shown}.{hint} "
        f"Fix: pick one of them (salad_core.tts.list_voices('{engine}'))."
    )


def to_16k(audio: np.ndarray | bytes, engine: str, voice: str, sample_rate: int | None = None) -> np.ndarray:
    """An engine's raw output (an array at `sample_rate`, or WAV bytes) as checked 16 kHz mono float32."""
    name = f"{engine} output for voice '{voice}'"
    return load_audio(audio, sample_rate=sample_rate, name=name, max_seconds=MAX_TTS_SECONDS)


def run_program(
    command: list[str], engine: str, stdin: str | None = None, timeout: float = 120.0, any_status: bool = False
) -> bytes:
    """Run an engine's program and return its stdout; a failure becomes a `TTSError` carrying its stderr.

    `any_status` accepts a non-zero exit (`flite --version` exits 1 after printing its version).
    """
    try:
        data = None if stdin is None else stdin.encode()
        done = subprocess.run(command, input=data, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise TTSError(f"{engine}: '{command[0]}' did not finish in {timeout:g} s. Fix: shorten the text.") from err
    if (done.returncode != 0 and not any_status) or not done.stdout:
        detail = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}, no output"
        raise TTSError(f"{engine}: '{' '.join(command[:3])} ...' failed: {detail}")
    return done.stdout
