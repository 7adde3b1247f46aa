"""The supported speech LLM families, by name; each module is imported when its family is first asked for."""

from __future__ import annotations

import importlib

from salad_core.errors import InputError, UnknownNameError
from salad_core.speechllm.family import SpeechLLMFamily

FAMILY_CLASSES = {  # name -> "module:class" under salad_core.speechllm.families
    "qwen2-audio": "qwen2_audio:Qwen2Audio",
    "voxtral": "voxtral:Voxtral",
    "granite-speech": "granite_speech:GraniteSpeech",
    "qwen2.5-omni": "qwen2_5_omni:Qwen25OmniThinker",
    "audio-flamingo-3": "audio_flamingo_3:AudioFlamingo3",
}


def get_family(name: str) -> SpeechLLMFamily:
    if name not in FAMILY_CLASSES:
        raise UnknownNameError(f"unknown speech LLM family {name!r}. Fix: choose one of {', '.join(FAMILY_CLASSES)}.")
    module, cls = FAMILY_CLASSES[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)()


def family_for(model_type: str) -> SpeechLLMFamily:
    """The family whose configs have this `model_type`; an unsupported one fails naming the supported families."""
    for name in FAMILY_CLASSES:
        family = get_family(name)
        if model_type in family.model_types:
            return family
    supported = ", ".join(f"{n} ({'/'.join(get_family(n).model_types)})" for n in FAMILY_CLASSES)
    raise InputError(f"salad cannot diagnose a speech LLM of type {model_type!r}: no family reads it. Supported "
                     f"families (config model_type): {supported}. Fix: pass one of those, or add a family in "
                     "salad_core/speechllm/families/ (docs/diagnose-your-model.md).")
