"""Named model set-ups. A preset fixes the LLM, the speech encoder and the adapter's shape; flags override fields.

`smol` is the offline default: real pretrained models that install from PyPI (SmolLM2-135M-Instruct, Whisper-base's
encoder) with an adapter at 12.5 Hz. The same fields take any hub id or local folder (e.g. `Qwen/Qwen2.5-3B`,
`openai/whisper-small`) through the same loading code. `mini` and `nano` are the mini world (salad_core/world):
its own tiny LM, pretrained on the world's text, and the frozen Whisper tiny.en encoder; they train on a CPU.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from salad_core.errors import UnknownNameError


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
    world: str | None = None  # the mini world whose speech and text this preset trains on
    corpus: str | None = None  # or the speech corpus it trains on: "broad" (salad_core/broad) for a real LLM


PRESETS = {
    p.name: p
    for p in [
        Preset(
            "smol",
            "SmolLM2-135M-Instruct + frozen Whisper-base encoder + 2-layer causal adapter at 12.5 Hz (offline default)",
            llm_name="HuggingFaceTB/SmolLM2-135M-Instruct",
            encoder_name="openai/whisper-base",
            corpus="broad",  # broad English in many TTS voices, audited against the built-in tasks' items
        ),
        Preset(
            "mini",
            "the mini world: its pretrained tiny LM + frozen Whisper tiny.en encoder + 1-layer adapter (CPU training)",
            llm_name="world:mini",
            encoder_name="openai/whisper-tiny.en",
            # one layer: 20 % less time per Stage I step than two, and as accurate (docs/results/engineering.md)
            adapter_layers=1,
            adapter_width=256,
            adapter_heads=4,
            world="mini",
        ),
        Preset(
            "nano",
            "the nano world (same code, tiny sizes): the whole pipeline in under a minute, for tests",
            llm_name="world:nano",
            encoder_name="openai/whisper-tiny.en",
            adapter_layers=1,
            adapter_width=64,
            adapter_heads=2,
            world="nano",
        ),
    ]
}


ADAPTERS_DIR = Path(__file__).resolve().parent / "adapters"  # trained adapters that ship with salad, one per preset


def shipped_adapter(preset: str) -> Path | None:
    """The trained model that comes with salad for `preset` (a saved SaladModel folder with its model card), or None
    when the preset ships none (`mini` and `nano` are trained in minutes on their worlds)."""
    folder = ADAPTERS_DIR / preset
    return folder if (folder / "model.safetensors").is_file() else None


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UnknownNameError(f"unknown preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def model_config(preset: str = "smol", **overrides):
    """A SaladConfig from a preset; `overrides` (e.g. llm_name=..., llm_mode="lora") set only what differs."""
    from salad_core.model.config import SaladConfig  # transformers: only once a model is built, not when a page opens

    fields = {k: v for k, v in asdict(get_preset(preset)).items()
              if k not in ("name", "description", "world", "corpus")}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return SaladConfig(**fields)


def run_llm_name(run_config: dict) -> str:
    """The LLM an evaluation run's model reads with: its saved model's, else the run's `--llm`, else its preset's."""
    folder = Path(run_config["model_path"]) if run_config.get("model_path") else None
    if folder is not None and (folder / "config.json").is_file():
        return json.loads((folder / "config.json").read_text())["llm_name"]
    return run_config.get("llm") or get_preset(run_config.get("preset") or "smol").llm_name
