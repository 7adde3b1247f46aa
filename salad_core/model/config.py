"""`SaladConfig`: what a speech-adapted LLM is built from, saved as `config.json` beside its weights.

The config records the *names* of the frozen speech encoder and of the LLM (hub ids, aliases or folders), so a
checkpoint holds only what was trained (adapter, and LoRA/full LLM weights when they changed) and is rebuilt from
those names, as Ultravox does with `audio_model_id`/`text_model_id`.
"""

from __future__ import annotations

from transformers import PretrainedConfig

from salad_core.errors import InputError
from salad_core.options import CTC_READS, LLM_MODES


class SaladConfig(PretrainedConfig):
    model_type = "salad"

    def __init__(
        self,
        llm_name: str = "HuggingFaceTB/SmolLM2-135M-Instruct",
        encoder_name: str = "openai/whisper-base",
        encoder_context: str = "clip",  # "clip" (fast, sliced positions) or "30s" (exact Whisper padding)
        adapter_stack: int = 4,  # encoder frames stacked per adapter frame: 50 Hz / 4 = 12.5 Hz
        adapter_layers: int = 2,
        adapter_width: int = 512,
        adapter_heads: int = 8,
        adapter_ffn_mult: int = 4,
        adapter_dropout: float = 0.0,
        ctc_compress: bool = False,  # the CTC alignment aid (salad_core/model/ctc.py): one frame per token
        ctc_read: str = "adapter",  # with the aid, what the LLM reads per kept frame: "adapter" output | "soft" token
        llm_mode: str = "frozen",
        lora_r: int = 16,
        lora_alpha: int = 32,
        lora_targets: tuple[str, ...] | list[str] = ("q_proj", "k_proj", "v_proj", "o_proj"),
        encoder_hidden_size: int | None = None,  # filled in when the encoder is loaded
        llm_hidden_size: int | None = None,  # filled in when the LLM is loaded
        **kwargs,
    ):
        if llm_mode not in LLM_MODES:
            raise InputError(f"llm_mode must be one of {LLM_MODES}, got {llm_mode!r}")
        if encoder_context not in ("clip", "30s"):
            raise InputError(f"encoder_context must be 'clip' or '30s', got {encoder_context!r}")
        if ctc_read not in CTC_READS:
            raise InputError(f"ctc_read must be one of {CTC_READS}, got {ctc_read!r}")
        if adapter_width % adapter_heads:
            raise InputError(f"adapter_width ({adapter_width}) must be divisible by adapter_heads ({adapter_heads}). "
                             f"Fix: pass an adapter width that is a multiple of the heads, or other heads.")
        self.llm_name = llm_name
        self.encoder_name = encoder_name
        self.encoder_context = encoder_context
        self.adapter_stack = adapter_stack
        self.adapter_layers = adapter_layers
        self.adapter_width = adapter_width
        self.adapter_heads = adapter_heads
        self.adapter_ffn_mult = adapter_ffn_mult
        self.adapter_dropout = adapter_dropout
        self.ctc_compress = ctc_compress
        self.ctc_read = ctc_read
        self.llm_mode = llm_mode
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_targets = list(lora_targets)
        self.encoder_hidden_size = encoder_hidden_size
        self.llm_hidden_size = llm_hidden_size
        super().__init__(**kwargs)
