"""The frozen speech encoder: any Whisper-family encoder, loaded by name through one code path.

`SpeechEncoder.load(name)` accepts a packaged name ("whisper-base", "openai/whisper-tiny.en", ...), a local
CTranslate2 folder (converted once into the `encoders` cache, then read back as `transformers` safetensors), a
local `transformers` Whisper folder, or a hub id found in the local Hugging Face cache. All of them end in
`load_whisper_encoder`, which reads a `transformers` folder or id.

Whisper's encoder was trained on 30-s windows only. Two context modes:
- "30s": every clip zero-padded to 30 s, the stock `WhisperEncoder.forward` (exact, ~30 s of compute per clip);
- "clip" (default): the clip plus `pad_seconds` of trailing silence, run through the encoder's own submodules
  with the position table sliced to that length. Clips are batched by length; padding inside a batch is masked
  (conv inputs zeroed, attention keys excluded), so a clip's frames do not depend on what it was batched with.
Both return the encoder frames covering the clip only: ceil(samples / 320) frames at 50 Hz.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import WhisperConfig, WhisperModel
from transformers.audio_utils import mel_filter_bank
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from salad_core.assets import PACKAGED_WHISPER, AssetError, cached_build, canonical_name, whisper_ct2_dir
from salad_core.errors import InputError
from salad_core.model.whisper_ct2 import whisper_encoder_from_ct2

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
N_FFT = 400
HOP = 160  # 100 mel frames per second
SAMPLES_PER_FRAME = 2 * HOP  # conv2 has stride 2: 50 encoder frames per second
WINDOW_SAMPLES = 30 * SAMPLE_RATE
MAX_ABS_AMPLITUDE = 4.0  # louder than this is almost surely unscaled integer PCM
CONVERT_RECIPE = "ct2-whisper-encoder-v1"  # bump when the conversion changes, so old cache entries are not reused
ALLOW_DOWNLOADS_ENV = "SALAD_ALLOW_DOWNLOAD"


class AudioInputError(InputError):
    """A clip cannot be encoded; the message names the clip and the fix."""


# ---------------------------------------------------------------------------------------------------------------
# Loading


def _hub_downloads_allowed() -> bool:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    return os.environ.get(ALLOW_DOWNLOADS_ENV) == "1" and not offline


def _not_available(source: str, err: Exception) -> AssetError:
    packaged = ", ".join(sorted(PACKAGED_WHISPER))
    return AssetError(
        f"Speech encoder '{source}' is not available offline: it is neither a local folder nor in the Hugging Face "
        f"cache, and salad does not download at run time unless {ALLOW_DOWNLOADS_ENV}=1 ({type(err).__name__}). "
        f"Fix: on a machine with hub access run `huggingface-cli download {source}` (the id then loads from the "
        f"cache) or add `--local-dir <folder>` and pass that folder; or use a packaged encoder: {packaged} "
        f"(short names whisper-base, whisper-tiny.en)."
    )


def _whisper_config(source: str | Path) -> WhisperConfig:
    """The config of a folder or hub id: local cache first, the hub only when downloads are allowed."""
    try:
        return WhisperConfig.from_pretrained(source, local_files_only=True)
    except OSError as err:
        if not _hub_downloads_allowed() or Path(source).is_dir():
            raise _not_available(str(source), err) from err
    try:
        return WhisperConfig.from_pretrained(source)
    except OSError as err:
        raise _not_available(str(source), err) from err


def load_whisper_encoder(source: str | Path, dtype: torch.dtype = torch.float32) -> WhisperEncoder:
    """A `WhisperEncoder` (float32 unless `dtype` says) from a `transformers` folder or hub id (encoder-only or full
    Whisper checkpoint).

    Hub ids are looked up in the local cache only; with SALAD_ALLOW_DOWNLOAD=1 (and HF_HUB_OFFLINE unset) a
    cache miss is downloaded. Local-only is the default because a failed hub request retries for ~45 s here.
    """
    config = _whisper_config(source)
    if config.model_type != "whisper":
        raise AssetError(f"'{source}' is a '{config.model_type}' model, not Whisper. Fix: pass a Whisper encoder.")
    kwargs = dict(local_files_only=not _hub_downloads_allowed(), dtype=dtype)
    if "WhisperEncoder" in (config.architectures or []):
        encoder = WhisperEncoder.from_pretrained(source, **kwargs)
    else:  # WhisperModel or WhisperForConditionalGeneration: both keep the encoder under model.encoder
        encoder = WhisperModel.from_pretrained(source, **kwargs).get_encoder()
    return encoder.eval()


def converted_ct2_dir(ct2_folder: Path, name: str) -> Path:
    """The cache folder holding the `transformers` copy of a CTranslate2 Whisper encoder (converted on first use)."""
    sources = [ct2_folder / "model.bin"] + [p for p in [ct2_folder / "config.json"] if p.is_file()]

    def convert(out: Path) -> None:
        log.info("converting the CTranslate2 Whisper encoder in %s (once)", ct2_folder)
        whisper_encoder_from_ct2(ct2_folder).save_pretrained(out, safe_serialization=True)

    return cached_build("encoders", name, sources, convert, recipe=CONVERT_RECIPE)


def resolve_encoder_source(name: str | Path) -> str | Path:
    """Map any accepted encoder name to a `transformers` folder (converting CTranslate2 models) or a hub id."""
    canonical = canonical_name(str(name))
    if canonical in PACKAGED_WHISPER:
        return converted_ct2_dir(whisper_ct2_dir(canonical), canonical)
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "model.bin").is_file():
            return converted_ct2_dir(path.resolve(), path.resolve().name)
        if (path / "config.json").is_file():
            return path
        raise AssetError(f"Folder {path} holds neither a CTranslate2 model.bin nor a transformers config.json. "
                         "Fix: pass the folder that contains the model files.")
    if path.exists() or str(name).startswith((".", "/", "~")) or str(name).count("/") > 1:
        raise AssetError(f"Speech encoder folder '{name}' does not exist (or is not a folder). "
                         "Fix: check the path, or use a packaged name such as whisper-base.")
    return str(name)


# ---------------------------------------------------------------------------------------------------------------
# Input checks


def _as_wave(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(audio, torch.Tensor):
        return audio.detach().to(torch.float32)
    return torch.from_numpy(np.asarray(audio, dtype=np.float32))


def audio_problem(audio: object) -> str | None:
    """Why `audio` cannot be encoded as one 16 kHz mono clip, or None when it can."""
    array = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    if array.ndim != 1:
        return (f"has shape {array.shape}; expected one mono channel (1-D). "
                "Fix: average the channels (audio.mean(axis=-1)) or pass one clip at a time")
    if array.size == 0:
        return "is empty. Fix: drop it, or synthesise/record it again"
    if not np.issubdtype(array.dtype, np.floating):
        return f"has dtype {array.dtype}; expected float samples in [-1, 1]. Fix: int16 PCM / 32768.0"
    if not np.isfinite(array).all():
        return "contains NaN or infinite samples. Fix: check the TTS/recording step that produced it"
    peak = float(np.abs(array).max())
    if peak > MAX_ABS_AMPLITUDE:
        return f"peaks at {peak:.0f}; expected float samples in [-1, 1]. Fix: divide integer PCM by 32768.0"
    if array.size > WINDOW_SAMPLES:
        return (f"lasts {array.size / SAMPLE_RATE:.1f} s; Whisper encoders see at most 30 s. "
                "Fix: split it into pieces of at most 30 s")
    return None


# ---------------------------------------------------------------------------------------------------------------
# The encoder


class LogMel(torch.nn.Module):
    """Whisper's log-mel front end, apart from the encoder so that a training job's data workers run it on the CPU
    while the encoder runs on the accelerator (`SpeechEncoder.encode_features`)."""

    def __init__(self, n_mels: int, context: str = "clip", pad_seconds: float = 1.0, max_frames: int = 1500):
        super().__init__()
        self.n_mels, self.context, self.pad_seconds, self.max_frames = n_mels, context, pad_seconds, max_frames
        filters = mel_filter_bank(num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=n_mels, min_frequency=0.0,
                                  max_frequency=SAMPLE_RATE / 2, sampling_rate=SAMPLE_RATE, norm="slaney",
                                  mel_scale="slaney")
        self.register_buffer("mel_filters", torch.tensor(filters.T, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, audio: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The log-mel spectrogram (n_mels, len // 160) of one 16 kHz clip, exactly as given (no padding)."""
        wave = _as_wave(audio).to(self.window.device)
        if wave.ndim != 1 or wave.numel() <= N_FFT // 2:
            raise AudioInputError(f"features() needs one mono clip of more than {N_FFT // 2} samples, got shape "
                                  f"{tuple(wave.shape)}. Fix: pass a 1-D 16 kHz clip (pad very short ones).")
        spec = torch.stft(wave, N_FFT, HOP, window=self.window, return_complex=True)  # centred, reflect-padded
        power = spec[:, :-1].abs() ** 2  # Whisper drops the last STFT frame
        log_mel = torch.clamp(self.mel_filters @ power, min=1e-10).log10()
        log_mel = torch.maximum(log_mel, log_mel.max() - 8.0)
        return (log_mel + 4.0) / 4.0

    def padded(self, audio: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The log-mel of one clip padded as `SpeechEncoder.encode` pads it: to whole encoder frames plus
        `pad_seconds` of silence ("clip" context), or to Whisper's 30 s window ("30s")."""
        wave = _as_wave(audio)
        target = SAMPLES_PER_FRAME * self.max_frames if self.context == "30s" else self._padded_length(wave.numel())
        return self(torch.nn.functional.pad(wave, (0, target - wave.numel())))

    def _padded_length(self, samples: int) -> int:
        # At least whole encoder frames over the clip, at most the position table (30 s).
        whole_frames = math.ceil(samples / SAMPLES_PER_FRAME) * SAMPLES_PER_FRAME
        padded = max(samples + round(self.pad_seconds * SAMPLE_RATE), whole_frames)
        return min(padded, SAMPLES_PER_FRAME * self.max_frames)


class SpeechEncoder(torch.nn.Module):
    """A frozen Whisper-family encoder: 16 kHz audio in, (frames, hidden) at 50 Hz out. Always in eval mode."""

    frame_rate: float = SAMPLE_RATE / SAMPLES_PER_FRAME  # 50.0 Hz

    def __init__(self, encoder: WhisperEncoder, name: str, context: str = "clip", pad_seconds: float = 1.0,
                 batch_size: int = 8, source: str | Path | None = None):
        super().__init__()
        if context not in ("clip", "30s"):
            raise ValueError(f"context={context!r}: expected 'clip' or '30s'.")
        if pad_seconds < 0:
            raise ValueError(f"pad_seconds={pad_seconds}: expected >= 0 seconds of trailing silence.")
        self.encoder = encoder.eval()
        self.encoder.requires_grad_(False)
        self.name, self.context, self.pad_seconds, self.batch_size = name, context, pad_seconds, batch_size
        self.source = source
        self.hidden_size: int = encoder.config.d_model
        self.n_mels: int = encoder.config.num_mel_bins
        self.max_frames: int = encoder.config.max_source_positions
        self.log_mel = LogMel(self.n_mels, context, pad_seconds, self.max_frames)

    @classmethod
    def load(cls, name: str | Path, context: str = "clip", pad_seconds: float = 1.0,
             batch_size: int = 8, dtype: torch.dtype = torch.float32) -> "SpeechEncoder":
        """Load by packaged name, CTranslate2 folder, transformers folder or (locally cached) hub id. `dtype` is the
        Whisper layers'; the log-mel front end stays float32 (the STFT needs it), its output cast on the way in."""
        source = resolve_encoder_source(name)
        return cls(load_whisper_encoder(source, dtype), str(name), context, pad_seconds, batch_size, source)

    def train(self, mode: bool = True) -> "SpeechEncoder":
        # Frozen by design: a parent model's .train() must not switch on dropout here.
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return self.log_mel.window.device

    def features(self, audio: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Whisper's log-mel spectrogram (n_mels, len // 160) of one 16 kHz clip, exactly as given (no padding)."""
        return self.log_mel(audio)

    def forward(self, input_features: torch.Tensor, mel_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Encode a padded batch of any length up to 30 s; positions sliced to fit.

        input_features: (B, n_mels, T) log-mel, zero beyond each clip's `mel_lengths` (B,) valid frames.
        Returns (B, ceil(T / 2), hidden); rows past ceil(mel_lengths / 2) are padding.
        """
        enc = self.encoder
        input_features = input_features.to(enc.conv1.weight.dtype)
        batch, _, total = input_features.shape
        if mel_lengths is None:
            mel_lengths = torch.full((batch,), total, device=input_features.device)
        mel_mask = torch.arange(total, device=input_features.device)[None, :] < mel_lengths[:, None]  # (B, T)
        hidden = torch.nn.functional.gelu(enc.conv1(input_features)) * mel_mask[:, None, :]
        hidden = torch.nn.functional.gelu(enc.conv2(hidden)).permute(0, 2, 1)  # (B, S, D)
        frames = hidden.shape[1]
        if frames > self.max_frames:
            raise AudioInputError(f"{frames} encoder frames exceed the position table ({self.max_frames}).")
        hidden = hidden + enc.embed_positions.weight[:frames]
        key_valid = torch.arange(frames, device=hidden.device)[None, :] < (mel_lengths[:, None] + 1) // 2
        attention_mask = None
        if not bool(key_valid.all()):
            blocked = torch.finfo(hidden.dtype).min
            attention_mask = torch.zeros(batch, 1, 1, frames, dtype=hidden.dtype, device=hidden.device)
            attention_mask = attention_mask.masked_fill(~key_valid[:, None, None, :], blocked)
            attention_mask = attention_mask.expand(batch, 1, frames, frames)
        for layer in enc.layers:
            hidden = layer(hidden, attention_mask)
        return enc.layer_norm(hidden)

    @torch.no_grad()
    def encode(self, audio_list: Sequence[np.ndarray], *, skip_bad: bool = False) -> list[torch.Tensor | None]:
        """Per clip, the encoder frames covering it: (ceil(samples / 320), hidden), in input order.

        A bad clip raises AudioInputError naming every bad clip; with skip_bad=True it gives None (logged) and the
        batch goes on.
        """
        problems = {i: p for i, clip in enumerate(audio_list) if (p := audio_problem(clip)) is not None}
        if problems and not skip_bad:
            detail = "; ".join(f"clip {i} {p}" for i, p in problems.items())
            raise AudioInputError(f"{len(problems)} of {len(audio_list)} clips cannot be encoded: {detail}")
        for i, problem in problems.items():
            log.warning("skipping clip %d: it %s", i, problem)
        good = [i for i in range(len(audio_list)) if i not in problems]
        if self.device.type == "cpu":
            torch.set_flush_denormal(True)  # denormals slow CPU matmuls 5-10x
        waves = {i: _as_wave(audio_list[i]) for i in good}
        out: list[torch.Tensor | None] = [None] * len(audio_list)
        # Longest first: honest time estimates, and the first batch shows the peak memory.
        order = sorted(good, key=lambda i: -waves[i].numel())
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            feats = [self.log_mel.padded(waves[i]) for i in batch]
            for i, frames in zip(batch, self.encode_features(feats, [waves[i].numel() for i in batch])):
                out[i] = frames
        return out

    @torch.no_grad()
    def encode_features(self, feats: Sequence[torch.Tensor], samples: Sequence[int]) -> list[torch.Tensor]:
        """Per clip, the frames covering its `samples`, from its front end (`log_mel.padded`, run here or in a
        data worker), in one batch."""
        feats = [f.to(self.device) for f in feats]
        if self.context == "30s":
            hidden = self.encoder(torch.stack(feats).to(self.encoder.conv1.weight.dtype)).last_hidden_state
        else:
            lengths = torch.tensor([f.shape[1] for f in feats], device=self.device)
            batch = torch.zeros(len(feats), self.n_mels, int(lengths.max()), device=self.device)
            for row, f in zip(batch, feats):
                row[:, : f.shape[1]] = f
            hidden = self(batch, lengths)
        return [hidden[k, : math.ceil(n / SAMPLES_PER_FRAME)].clone() for k, n in enumerate(samples)]

