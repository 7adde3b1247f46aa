"""espeak-ng (Debian's `espeak-ng` program): formant synthesis, robotic but fast, many English accents.

Voices are an accent (`en-us`, `en-gb-scotland`, ...) optionally with a variant (`en-us+f3`, `en-gb-x-rp+m2`);
both lists are read from the installed program. MBROLA voices are left out (they need separate downloads).
"""

from __future__ import annotations

import functools
import re
import shutil

import numpy as np

from salad_core.tts.base import MissingProgramError, check_speed, check_text, run_program, to_16k, unknown_voice

PROGRAM = "espeak-ng"
BASE_WPM = 175  # espeak-ng's default rate; speed s speaks at 175·s words per minute


def missing() -> MissingProgramError | None:
    return None if shutil.which(PROGRAM) else MissingProgramError(PROGRAM, "espeak")


@functools.cache
def _voice_table(kind: str) -> list[list[str]]:
    """Rows of `espeak-ng --voices=<kind>`: priority, language, age/gender, name, file, other languages."""
    listing = run_program([PROGRAM, f"--voices={kind}"], "espeak").decode()
    return [line.split() for line in listing.splitlines()[1:] if line.strip()]


@functools.cache
def accents() -> list[str]:
    """English accents spoken by espeak-ng's own (non-MBROLA) voices, with the short aliases they answer to."""
    names: list[str] = []
    for row in _voice_table("en"):
        if row[1] == "variant" or row[4].startswith("mb/"):
            continue
        aliases = [row[1]] + [tok.strip("(") for tok in row[5:] if tok.startswith("(")]
        names += [a for a in aliases if a.startswith("en") and a not in names]
    return names


@functools.cache
def variants() -> list[str]:
    return [row[4].split("/", 1)[1] for row in _voice_table("variant") if row[4].startswith("!v/")]


@functools.cache
def program_version() -> str:
    out = run_program([PROGRAM, "--version"], "espeak").decode()
    found = re.search(r"eSpeak NG text-to-speech: (\S+)", out)
    return f"espeak-ng {found.group(1) if found else out.strip()}"


class EspeakEngine:
    name = "espeak"

    def __init__(self, threads: int | None = None):
        del threads  # one process per utterance; nothing to share

    def voices(self) -> list[str]:
        return accents() + [f"{a}+{v}" for a in accents() for v in variants()]

    def check_voice(self, voice: str) -> str:
        accent, plus, variant = voice.partition("+")
        if accent not in accents() or (plus and variant not in variants()):
            raise unknown_voice(self.name, voice, self.voices(), " Variants: " + ", ".join(variants()[:8]) + ", ...")
        return voice

    def synthesize(self, text: str, voice: str, speed: float = 1.0) -> np.ndarray:
        wpm = round(BASE_WPM * check_speed(speed))
        command = [PROGRAM, "-v", self.check_voice(voice), "-s", str(wpm), "-b", "1", "--stdout"]
        # Text goes through stdin so that a leading '-' is never read as an option.
        wav = run_program(command, self.name, stdin=check_text(text))
        return to_16k(wav, self.name, voice)

    def version(self) -> str:
        return program_version()
