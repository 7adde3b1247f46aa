"""Content-addressed store of synthesized speech: each utterance is rendered once and kept as 16 kHz FLAC.

An utterance's address is sha256 over (engine, engine version, canonical voice, speed, text), so a new engine or
model version gives new files and an unchanged request is never synthesized again. Files are written to a temporary
name and renamed into place, so readers never see half a file, even with many writer processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from salad_core.audio import save_audio
from salad_core.paths import cache_dir
from salad_core.tts.base import TTSEngine, VoiceSpec, check_speed, check_text
from salad_core.tts.registry import get_engine


@dataclass(frozen=True)
class TTSCache:
    root: Path = field(default_factory=lambda: cache_dir("tts"))

    def address(self, text: str, spec: VoiceSpec, version: str) -> str:
        payload = json.dumps([spec.engine, version, spec.voice, round(float(spec.speed), 4), text])
        return hashlib.sha256(payload.encode()).hexdigest()

    def path_for(self, digest: str) -> Path:
        return Path(self.root) / digest[:2] / f"{digest}.flac"


def _request(text: str, spec: VoiceSpec, cache: TTSCache, engine: TTSEngine) -> tuple[str, VoiceSpec, Path]:
    """Checked text and spec in canonical form (so equal requests share one file), and their cache path."""
    text, spec = check_text(text), VoiceSpec(spec.engine, engine.check_voice(spec.voice), check_speed(spec.speed))
    return text, spec, cache.path_for(cache.address(text, spec, engine.version()))


def cache_path(text: str, spec: VoiceSpec, cache: TTSCache | None = None, engine: TTSEngine | None = None) -> Path:
    """Where the utterance lives (or will live) in the cache; raises on a bad engine, voice, speed or text."""
    return _request(text, spec, cache or TTSCache(), engine or get_engine(spec.engine))[2]


def synthesize(text: str, spec: VoiceSpec, *, cache: TTSCache | None = None, engine: TTSEngine | None = None) -> Path:
    """The cached FLAC of `text` spoken as `spec`, synthesizing it only if absent.

    `engine` overrides the registry's instance (the process pool passes its thread-capped one).
    """
    engine = engine or get_engine(spec.engine)
    text, spec, path = _request(text, spec, cache or TTSCache(), engine)
    if path.exists():
        return path
    audio = engine.synthesize(text, spec.voice, spec.speed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.flac")
    try:
        save_audio(tmp, audio)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
