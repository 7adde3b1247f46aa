"""flite (Debian's `flite` program, CMU Flite 2.2): small diphone/clustergen voices, clear and fast.

Voices come from `flite -lv`; `awb_time` is left out because it is a limited-domain voice that only speaks clock
times. `kal` renders at 8 kHz, the others at 16 kHz; all come back at 16 kHz.
"""

from __future__ import annotations

import functools
import re
import shutil

import numpy as np

from salad_core.tts.base import MissingProgramError, check_speed, check_text, run_program, to_16k, unknown_voice

PROGRAM = "flite"
LIMITED_DOMAIN = {"awb_time"}


def missing() -> MissingProgramError | None:
    return None if shutil.which(PROGRAM) else MissingProgramError(PROGRAM, "flite")


@functools.cache
def installed_voices() -> list[str]:
    listing = run_program([PROGRAM, "-lv"], "flite").decode()
    names = listing.split(":", 1)[-1].split()
    return [n for n in names if n not in LIMITED_DOMAIN]


@functools.cache
def program_version() -> str:
    out = run_program([PROGRAM, "--version"], "flite", any_status=True).decode()
    found = re.search(r"version: (.+)", out)
    return found.group(1).strip() if found else out.strip()


class FliteEngine:
    name = "flite"

    def __init__(self, threads: int | None = None):
        del threads  # one process per utterance; nothing to share

    def voices(self) -> list[str]:
        return installed_voices()

    def check_voice(self, voice: str) -> str:
        # flite falls back to its default voice on an unknown name without complaint, so check first.
        if voice not in installed_voices():
            raise unknown_voice(self.name, voice, self.voices())
        return voice

    def synthesize(self, text: str, voice: str, speed: float = 1.0) -> np.ndarray:
        stretch = 1.0 / check_speed(speed)
        command = [PROGRAM, "-voice", self.check_voice(voice), "--setf", f"duration_stretch={stretch:.6f}",
                   "-t", check_text(text), "-o", "/dev/stdout"]  # fmt: skip
        return to_16k(run_program(command, self.name), self.name, voice)

    def version(self) -> str:
        return program_version()
