"""The table of TTS engines: which exist, which can run here, and one shared instance of each per process."""

from __future__ import annotations

import functools
import importlib

from salad_core.assets import AssetError
from salad_core.tts.base import TTSEngine, TTSError

# name -> (module, class). Each module has a cheap `missing()` that returns the error saying what to install.
ENGINES: dict[str, tuple[str, str]] = {
    "espeak": ("salad_core.tts.espeak", "EspeakEngine"),
    "flite": ("salad_core.tts.flite", "FliteEngine"),
    "piper": ("salad_core.tts.piper", "PiperEngine"),
    "kokoro": ("salad_core.tts.kokoro", "KokoroEngine"),
}


def _module(name: str):
    if name not in ENGINES:
        here = ", ".join(list_engines())
        raise TTSError(f"unknown TTS engine '{name}'. Engines: {', '.join(ENGINES)} (available here: {here}).")
    return importlib.import_module(ENGINES[name][0])


def missing(name: str) -> AssetError | None:
    """Why engine `name` cannot run here (an error naming the fix), or None if it can."""
    return _module(name).missing()


def list_engines() -> list[str]:
    """The engines whose programs or packages are installed here."""
    return [name for name in ENGINES if _module(name).missing() is None]


def get_engine(name: str, threads: int | None = None) -> TTSEngine:
    """The process's instance of engine `name` (models load on first synthesis). `threads` caps onnxruntime."""
    problem = missing(name)
    if problem is not None:
        raise problem
    return _instance(name, threads)


@functools.cache
def _instance(name: str, threads: int | None) -> TTSEngine:
    return getattr(_module(name), ENGINES[name][1])(threads=threads)


def list_voices(engine: str) -> list[str]:
    return get_engine(engine).voices()
