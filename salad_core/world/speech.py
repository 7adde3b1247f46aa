"""Speech of the mini world: the training and evaluation voice sets, and clips rendered, trimmed, noised, encoded.

Every clip is one TTS utterance (a speech span, a fully spoken document, or an eval question) through
`salad_core.tts` (cached, all cores). Clips synthesized in isolation carry extra leading/trailing silence
(docs: mini-world-notes.md), so each is trimmed by an energy threshold before anything else; training clips then get
seeded white noise at a random SNR on some of them. The frozen Whisper tiny.en encoder ("clip" mode) runs once per
clip; frames are stored as float16 in safetensors shards keyed by clip id. `clip_audio` recomputes a clip's audio
(cached TTS file -> trim -> noise) so the world keeps features, not waveforms.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from salad_core.audio import add_noise
from salad_core.text import stable_hash
from salad_core.tts import VoiceSpec, synthesize, synthesize_many

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
ENCODER = "whisper-tiny.en"
TRAIN_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-us-nyc")
TRAIN_VARIANTS = ("", "m1", "m2", "m3", "m4", "f1", "f2", "f3", "f4", "klatt", "adam", "david", "linda", "john",
                  "steph", "max")
TRAIN_FLITE = ("kal16", "awb", "rms")
# Never used in training: accents held out entirely (en-029, en-gb-x-gbcwmd), variants held out, and flite's slt.
EVAL_VOICES = ("espeak:en-029+m5", "espeak:en-gb-x-gbcwmd+f5", "espeak:en-us+m7", "espeak:en-gb+belinda", "flite:slt")
TRAIN_SPEEDS = (0.8, 0.9, 1.0, 1.1, 1.25)
TRIM_DB = -40.0  # frames quieter than this, relative to the loudest 10-ms frame, count as silence
TRIM_MARGIN_S = 0.03


def train_voices(n_variants: int, flite: bool = True) -> list[str]:
    """Training voice keys (`engine:voice`): every training accent with its first `n_variants` variants, + flite."""
    espeak = [f"espeak:{a}{'+' + v if v else ''}" for a in TRAIN_ACCENTS for v in TRAIN_VARIANTS[:n_variants]]
    return espeak + ([f"flite:{v}" for v in TRAIN_FLITE] if flite else [])


def voice_spec(voice: str, speed: float) -> VoiceSpec:
    engine, _, name = voice.partition(":")
    return VoiceSpec(engine, name, speed)


@dataclass(frozen=True)
class ClipRequest:
    clip_id: str
    text: str  # what the engine reads
    voice: str  # engine:voice
    speed: float
    role: str  # "train" | "eval" | "probe"
    snr_db: float | None = None  # white noise added at this SNR (training clips only)


# ---------------------------------------------------------------------------------------------------------------
# Audio processing


def trim_bounds(audio: np.ndarray, threshold_db: float = TRIM_DB, margin_s: float = TRIM_MARGIN_S) -> tuple[int, int]:
    """(start, end) samples of the clip without its leading and trailing silence (energy threshold per 10 ms)."""
    hop = SAMPLE_RATE // 100
    n = len(audio) // hop
    if n == 0:
        return 0, len(audio)
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > threshold_db)
    margin = round(margin_s * SAMPLE_RATE)
    start = max(0, int(loud[0]) * hop - margin)
    end = min(len(audio), (int(loud[-1]) + 1) * hop + margin)
    return start, end


def _finish(raw: np.ndarray, request: ClipRequest, bounds: tuple[int, int]) -> np.ndarray:
    audio = raw[bounds[0] : bounds[1]]
    if request.snr_db is not None:
        audio = add_noise(audio, request.snr_db, stable_hash("noise", request.clip_id) % 2**32)
    return audio


def clip_audio(record: dict) -> np.ndarray:
    """A clip's audio from its stored record: the cached TTS utterance (re-synthesized if gone), trimmed, noised."""
    from salad_core.audio import load_audio

    request = ClipRequest(**{k: record[k] for k in ClipRequest.__dataclass_fields__})
    path = synthesize(request.text, voice_spec(request.voice, request.speed))
    return _finish(load_audio(path), request, (record["start"], record["end"]))


# ---------------------------------------------------------------------------------------------------------------
# Rendering and encoding


def render(requests: list[ClipRequest]) -> Iterator[tuple[dict, np.ndarray | None]]:
    """Synthesize every request (cached, all cores), then yield (record, audio) in order; audio None on failure."""
    from salad_core.audio import load_audio

    specs = [voice_spec(r.voice, r.speed) for r in requests]
    paths = synthesize_many([r.text for r in requests], specs, progress=False)
    for request, path in zip(requests, paths):
        record = asdict(request)
        if isinstance(path, Exception):
            log.warning("clip %s (%r, %s) failed: %s", request.clip_id, request.text, request.voice, path)
            yield {**record, "error": str(path)}, None
            continue
        raw = load_audio(path)
        bounds = trim_bounds(raw)
        audio = _finish(raw, request, bounds)
        yield {**record, "start": bounds[0], "end": bounds[1], "seconds": len(audio) / SAMPLE_RATE}, audio


class ShardWriter:
    """Collects (clip id -> float16 frames) and writes `features/shard-NNN.safetensors` every `shard_clips` clips."""

    def __init__(self, folder: Path, shard_clips: int):
        self.folder, self.shard_clips = folder, shard_clips
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pending: dict = {}
        self.count = 0

    @property
    def current(self) -> str:
        return f"shard-{self.count:03d}.safetensors"

    def add(self, clip_id: str, frames) -> str:
        """Queue one clip's frames; returns the shard file name it will live in."""
        import torch

        name = self.current
        self.pending[clip_id] = frames.to(torch.float16).contiguous()
        if len(self.pending) >= self.shard_clips:
            self.flush()
        return name

    def flush(self) -> None:
        from safetensors.torch import save_file

        if self.pending:
            save_file(self.pending, str(self.folder / self.current))
            self.pending, self.count = {}, self.count + 1


def encode_clips(requests: list[ClipRequest], folder: Path, *, shard_clips: int, chunk: int = 256,
                 progress=None, label: str = "world speech", threads: Callable[[], int | None] | None = None) -> list[dict]:
    """Render, encode and store every clip; returns one record per clip (failed ones carry an "error"). `threads`,
    asked before each chunk, caps the encoder's CPU threads while other work shares the machine (None: no cap)."""
    import torch

    from salad_core.model.encoder import SpeechEncoder

    # Synthesis first, in one pool for every clip (a pool per chunk would pay its start-up each time); the chunks
    # below then read the cached audio.
    if progress is not None:
        progress.set_stage(f"{label}: synthesis", len(requests))
    synthesize_many([r.text for r in requests], [voice_spec(r.voice, r.speed) for r in requests], progress=False,
                    on_done=progress.update if progress is not None else None)
    if progress is not None:
        progress.set_stage(f"{label}: encoder frames", len(requests))
    torch.set_flush_denormal(True)  # denormals slow CPU matmuls 5-10x
    encoder = SpeechEncoder.load(ENCODER, batch_size=16)
    writer, records = ShardWriter(folder, shard_clips), []
    all_threads = torch.get_num_threads()
    try:
        for start in range(0, len(requests), chunk):
            torch.set_num_threads((threads() if threads else None) or all_threads)
            rendered = list(render(requests[start : start + chunk]))
            good = [(rec, audio) for rec, audio in rendered if audio is not None]
            frames = encoder.encode([audio for _, audio in good], skip_bad=True)
            for (rec, _), feats in zip(good, frames):
                if feats is None:
                    rec["error"] = "the encoder refused the clip (see the log)"
                else:
                    rec.update(shard=writer.add(rec["clip_id"], feats), frames=int(feats.shape[0]))
            records += [rec for rec, _ in rendered]
            if progress is not None:
                progress.update(len(rendered))
    finally:
        torch.set_num_threads(all_threads)
    writer.flush()
    return records
