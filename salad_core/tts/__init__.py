"""Text-to-speech for salad: one interface over four offline engines, a content-addressed cache, all-core batches.

    from salad_core.tts import VoiceSpec, synthesize, synthesize_many
    path = synthesize("What is the capital of France?", VoiceSpec("kokoro", "jf_alpha"))

Engines: `espeak` (espeak-ng), `flite`, `piper` (en_US-joe-medium), `kokoro` (Kokoro-82M int8, the paper's TTS
family). Synthesized speech is float32 mono 16 kHz; the cache holds it as FLAC (see `cache.py`).
"""

from salad_core.tts.base import MissingProgramError, TTSEngine, TTSError, VoiceSpec
from salad_core.tts.batch import synthesize_many
from salad_core.tts.cache import TTSCache, cache_path, synthesize
from salad_core.tts.registry import ENGINES, get_engine, list_engines, list_voices, missing

__all__ = [
    "ENGINES",
    "MissingProgramError",
    "TTSCache",
    "TTSEngine",
    "TTSError",
    "VoiceSpec",
    "cache_path",
    "get_engine",
    "list_engines",
    "list_voices",
    "missing",
    "synthesize",
    "synthesize_many",
]
