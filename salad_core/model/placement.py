"""Where and in what precision a `SaladModel` is built: the `dtype` and `device_map` of `from_pretrained`, checked
once, with errors that name the accepted values."""

from __future__ import annotations

import torch

from salad_core.errors import InputError

DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")  # handed to the LLM's from_pretrained


def checked_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    """A floating-point torch dtype from itself or its name ("bfloat16"); None is float32, the dtype salad trains in."""
    if dtype is None:
        return torch.float32
    named = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(named, torch.dtype) or not named.is_floating_point:
        raise InputError(f"dtype={dtype!r} is not a floating-point torch dtype. Fix: pass torch.float32, "
                         "torch.bfloat16 or torch.float16 (or its name), or None for float32.")
    return named


def checked_device_map(device_map: str | int | torch.device | None) -> str | torch.device | None:
    """None (the CPU), one device for every part, or a placement strategy for the LLM (see DEVICE_MAP_STRATEGIES).

    A per-module dict is refused: its keys would name the LLM's modules, and the encoder and the adapter would
    have no place in it.
    """
    if device_map is None or isinstance(device_map, torch.device) or device_map in DEVICE_MAP_STRATEGIES:
        return device_map
    try:
        if isinstance(device_map, int) and not isinstance(device_map, bool):
            return torch.device("cuda", device_map)  # a GPU index, as transformers reads one
        if isinstance(device_map, str):
            return torch.device(device_map)
    except RuntimeError:
        pass
    raise InputError(f"device_map={device_map!r} is not supported. Fix: pass None or 'cpu', a device ('cuda', "
                     f"'cuda:1', a torch.device or a GPU index), or one of {', '.join(DEVICE_MAP_STRATEGIES)}.")
