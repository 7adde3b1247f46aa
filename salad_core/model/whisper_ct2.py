"""Whisper encoders stored in CTranslate2's `model.bin`, read into PyTorch as `transformers.WhisperEncoder`.

The packaged Whisper models (see `salad_core.assets.whisper_ct2_dir`) exist only in CTranslate2 format. Their
encoder weights map one-to-one onto `transformers`' `WhisperEncoder`, so we read the binary file ourselves and
load the weights with `load_state_dict(strict=True)`.

`model.bin` framing (as written by `ctranslate2.specs.model_spec.ModelSpec._serialize`, binary version 6):
u32 version, string spec name, u32 revision, u32 variable count; per variable: string name, u8 rank, u32 dims,
u8 dtype, u32 byte count, raw little-endian data; then u32 alias count and (alias, target) string pairs.
A string is a u16 length counting a trailing NUL, then the bytes and the NUL.
Quantized weights carry a `<name>_scale` sibling: `stored = round(weight * scale)`, so `weight = stored / scale`.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from salad_core.assets import AssetError

# DataType enum order of ctranslate2 (include/ctranslate2/types.h); bfloat16 is read via its upper 16 bits.
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
_SUPPORTED_VERSIONS = (4, 5, 6)  # versions that store (dtype id, byte count) per variable


def _read(f: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise EOFError("file ends in the middle of a record")
    return struct.unpack(fmt, data)


def _read_string(f: BinaryIO) -> str:
    (length,) = _read(f, "<H")
    raw = f.read(length)
    if len(raw) != length:
        raise EOFError("file ends in the middle of a name")
    return raw.rstrip(b"\0").decode("utf-8")


def _decode(raw: bytes, type_id: int, shape: tuple[int, ...], name: str, path: Path) -> np.ndarray:
    if type_id not in _DTYPES:
        raise AssetError(f"{path}: variable '{name}' has unknown CTranslate2 dtype id {type_id}. "
                         "Fix: re-export the model with a current ct2-transformers-converter.")
    dtype = _DTYPES[type_id]
    if dtype == "bfloat16":
        upper = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return upper.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)


def _read_raw_variables(path: Path) -> tuple[str, dict[str, np.ndarray], dict[str, str]]:
    with open(path, "rb") as f:
        (version,) = _read(f, "<I")
        if version not in _SUPPORTED_VERSIONS:
            raise AssetError(f"{path} is CTranslate2 binary version {version}; salad reads versions "
                             f"{_SUPPORTED_VERSIONS}. Fix: reconvert the model with ctranslate2>=3 "
                             "(ct2-transformers-converter) or pass the original transformers folder.")
        spec = _read_string(f)
        _read(f, "<I")  # spec revision
        (count,) = _read(f, "<I")
        variables: dict[str, np.ndarray] = {}
        for _ in range(count):
            name = _read_string(f)
            (rank,) = _read(f, "<B")
            shape = _read(f, f"<{rank}I") if rank else ()
            type_id, num_bytes = _read(f, "<BI")
            raw = f.read(num_bytes)
            if len(raw) != num_bytes:
                raise EOFError(f"variable '{name}' is cut short")
            variables[name] = _decode(raw, type_id, shape, name, path)
        (num_aliases,) = _read(f, "<I")
        aliases: dict[str, str] = {}
        for _ in range(num_aliases):
            alias = _read_string(f)
            aliases[alias] = _read_string(f)
    return spec, variables, aliases


def _dequantize(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, value in variables.items():
        if name.endswith("_scale") and name[: -len("_scale")] in variables:
            continue
        scale = variables.get(name + "_scale")
        value = value.astype(np.float32)
        if scale is not None:
            scale = scale.astype(np.float32)
            # int8 scales are per output row (conv weights included); int16 uses one scalar.
            value = value / scale.reshape(scale.shape + (1,) * (value.ndim - scale.ndim))
        out[name] = value
    return out


def read_ct2_variables(path: str | Path) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 `model.bin` as float32 arrays, quantized weights dequantized.

    Aliases (e.g. a decoder projection tied to the embeddings) appear under their own name too.
    """
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"CTranslate2 model file {path} does not exist. Fix: pass a folder that holds model.bin.")
    try:
        _, variables, aliases = _read_raw_variables(path)
    except EOFError as err:
        raise AssetError(f"{path} is truncated or not a CTranslate2 model ({err}). "
                         "Fix: re-download or re-convert the model.") from err
    values = _dequantize(variables)
    for alias, target in aliases.items():
        if target in values:
            values[alias] = values[target]
    return values


def ct2_spec_name(path: str | Path) -> str:
    """The spec name recorded in a `model.bin` ("WhisperSpec" for Whisper), reading only the header."""
    with open(path, "rb") as f:
        _read(f, "<I")
        return _read_string(f)


def _count_layers(variables: dict[str, np.ndarray], prefix: str) -> int:
    count = 0
    while f"{prefix}/layer_{count}/ffn/linear_0/weight" in variables:
        count += 1
    return count


def _scalar(variables: dict[str, np.ndarray], name: str, default: int) -> int:
    return int(variables[name]) if name in variables else default


def whisper_config_from_ct2(variables: dict[str, np.ndarray]) -> WhisperConfig:
    """A `WhisperConfig` whose sizes are read from the weight shapes (heads from `encoder/num_heads`)."""
    conv1 = variables["encoder/conv1/weight"]  # (d_model, n_mels, 3)
    d_model = conv1.shape[0]
    kwargs = dict(
        d_model=d_model,
        num_mel_bins=conv1.shape[1],
        encoder_layers=_count_layers(variables, "encoder"),
        encoder_attention_heads=_scalar(variables, "encoder/num_heads", d_model // 64),
        encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=variables["encoder/position_encodings/encodings"].shape[0],
    )
    if "decoder/embeddings/weight" in variables:  # record the decoder's sizes too, so the config describes the model
        kwargs.update(
            vocab_size=variables["decoder/embeddings/weight"].shape[0],
            decoder_layers=_count_layers(variables, "decoder"),
            decoder_attention_heads=_scalar(variables, "decoder/num_heads", d_model // 64),
            decoder_ffn_dim=variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
            max_target_positions=variables["decoder/position_encodings/encodings"].shape[0],
        )
    return WhisperConfig(**kwargs)


def _layer_state(variables: dict[str, np.ndarray], i: int, d_model: int) -> dict[str, np.ndarray]:
    src, dst = f"encoder/layer_{i}", f"layers.{i}"
    qkv_w = variables[f"{src}/self_attention/linear_0/weight"]
    qkv_b = variables[f"{src}/self_attention/linear_0/bias"]
    if np.abs(qkv_b[d_model : 2 * d_model]).max() > 0:
        raise AssetError(f"layer {i}: the key projection has a non-zero bias, which WhisperEncoder cannot hold. "
                         "Fix: this is not a Whisper encoder; load it with its own architecture.")
    state = {
        f"{dst}.self_attn.q_proj.weight": qkv_w[:d_model],
        f"{dst}.self_attn.q_proj.bias": qkv_b[:d_model],
        f"{dst}.self_attn.k_proj.weight": qkv_w[d_model : 2 * d_model],
        f"{dst}.self_attn.v_proj.weight": qkv_w[2 * d_model :],
        f"{dst}.self_attn.v_proj.bias": qkv_b[2 * d_model :],
    }
    pairs = {
        "self_attention/linear_1": "self_attn.out_proj",
        "ffn/linear_0": "fc1",
        "ffn/linear_1": "fc2",
    }
    for ct2, hf in pairs.items():
        state[f"{dst}.{hf}.weight"] = variables[f"{src}/{ct2}/weight"]
        state[f"{dst}.{hf}.bias"] = variables[f"{src}/{ct2}/bias"]
    for ct2, hf in {"self_attention/layer_norm": "self_attn_layer_norm", "ffn/layer_norm": "final_layer_norm"}.items():
        state[f"{dst}.{hf}.weight"] = variables[f"{src}/{ct2}/gamma"]
        state[f"{dst}.{hf}.bias"] = variables[f"{src}/{ct2}/beta"]
    return state


def encoder_state_from_ct2(variables: dict[str, np.ndarray], config: WhisperConfig) -> dict[str, torch.Tensor]:
    """The `WhisperEncoder` state dict held in CTranslate2 variables (every key of the encoder, nothing else)."""
    state = {
        "conv1.weight": variables["encoder/conv1/weight"],
        "conv1.bias": variables["encoder/conv1/bias"],
        "conv2.weight": variables["encoder/conv2/weight"],
        "conv2.bias": variables["encoder/conv2/bias"],
        "embed_positions.weight": variables["encoder/position_encodings/encodings"],
        "layer_norm.weight": variables["encoder/layer_norm/gamma"],
        "layer_norm.bias": variables["encoder/layer_norm/beta"],
    }
    for i in range(config.encoder_layers):
        state.update(_layer_state(variables, i, config.d_model))
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def whisper_encoder_from_ct2(folder: str | Path) -> WhisperEncoder:
    """A float32 `WhisperEncoder` (eval mode) with the weights of the CTranslate2 Whisper model in `folder`."""
    path = Path(folder) / "model.bin"
    if not path.is_file():
        raise AssetError(f"{folder} holds no model.bin. Fix: pass a CTranslate2 Whisper folder "
                         "(e.g. salad_core.assets.whisper_ct2_dir('whisper-base')).")
    spec = ct2_spec_name(path)
    if spec != "WhisperSpec":
        raise AssetError(f"{path} holds a CTranslate2 '{spec}', not a Whisper model. Fix: pass a Whisper folder.")
    variables = read_ct2_variables(path)
    config = whisper_config_from_ct2(variables)
    encoder = WhisperEncoder(config)
    # strict: every encoder weight comes from the file and nothing is left over.
    encoder.load_state_dict(encoder_state_from_ct2(variables, config), strict=True)
    return encoder.eval()
