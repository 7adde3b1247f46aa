"""Named model set-ups. A preset fixes the LLM, the speech encoder and the adapter's shape; flags override fields.

`smol` is the offline default: real pretrained models that install from PyPI (SmolLM2-135M-Instruct, Whisper-base's
encoder) with an adapter at 12.5 Hz. The same fields take any hub id or local folder (e.g. `Qwen/Qwen2.5-3B`,
`openai/whisper-small`) through the same loading code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from salad_core.model.config import SaladConfig


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    llm_name: str
    encoder_name: str
    adapter_stack: int = 4
    adapter_layers: int = 2
    adapter_width: int = 512
    adapter_heads: int = 8


PRESETS = {
    p.name: p
    for p in [
        Preset(
            "smol",
            "SmolLM2-135M-Instruct + frozen Whisper-base encoder + 2-layer causal adapter at 12.5 Hz (offline default)",
            llm_name="HuggingFaceTB/SmolLM2-135M-Instruct",
            encoder_name="openai/whisper-base",
        ),
    ]
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def model_config(preset: str = "smol", **overrides) -> SaladConfig:
    """A SaladConfig from a preset; `overrides` (e.g. llm_name=..., llm_mode="lora") set only what differs."""
    fields = {k: v for k, v in asdict(get_preset(preset)).items() if k not in ("name", "description")}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return SaladConfig(**fields)
