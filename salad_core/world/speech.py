"""Voices of the mini world: the training voice set, the held-out evaluation voices, speeds and the encoder.

Every clip of the world is one TTS utterance (a speech span, a fully spoken document, or an eval question),
rendered, trimmed, noised (training clips only, some of them) and encoded once by `salad_core.clips`.
"""

from __future__ import annotations

ENCODER = "whisper-tiny.en"
TRAIN_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-us-nyc")
TRAIN_VARIANTS = ("", "m1", "m2", "m3", "m4", "f1", "f2", "f3", "f4", "klatt", "adam", "david", "linda", "john",
                  "steph", "max")
TRAIN_FLITE = ("kal16", "awb", "rms")
# Never used in training: accents held out entirely (en-029, en-gb-x-gbcwmd), variants held out, and flite's slt.
EVAL_VOICES = ("espeak:en-029+m5", "espeak:en-gb-x-gbcwmd+f5", "espeak:en-us+m7", "espeak:en-gb+belinda", "flite:slt")
TRAIN_SPEEDS = (0.8, 0.9, 1.0, 1.1, 1.25)


def train_voices(n_variants: int, flite: bool = True) -> list[str]:
    """Training voice keys (`engine:voice`): every training accent with its first `n_variants` variants, + flite."""
    espeak = [f"espeak:{a}{'+' + v if v else ''}" for a in TRAIN_ACCENTS for v in TRAIN_VARIANTS[:n_variants]]
    return espeak + ([f"flite:{v}" for v in TRAIN_FLITE] if flite else [])
