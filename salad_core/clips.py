"""Speech clips: synthesized (cached TTS), trimmed of silence, optionally noised, encoded once by a frozen encoder.

A clip is one TTS utterance (a speech span of a document, a spoken question). `encode_clips` renders and encodes a
list of `ClipRequest`s into a folder: `clips.jsonl` (one record per clip: text, voice, speed, role, trim bounds, SNR,
seconds, frames, shard) and `features/shard-NNN.safetensors` (float16 frames keyed by clip id). `ClipBank` reads such
a folder back: a built world is one, a selection round another, a held-out probe set a third. Clips synthesized in
isolation carry extra leading and trailing silence, so each is trimmed by an energy threshold first; `clip_audio`
recomputes a clip's audio (cached TTS file -> trim -> noise), so folders keep features, not waveforms.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from salad_core.audio import SAMPLE_RATE, add_noise, load_audio
from salad_core.text import stable_hash
from salad_core.tts import VoiceSpec, synthesize, synthesize_many

log = logging.getLogger(__name__)

TRIM_DB = -40.0  # frames quieter than this, relative to the loudest 10-ms frame, count as silence
TRIM_MARGIN_S = 0.03


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
    request = ClipRequest(**{k: record[k] for k in ClipRequest.__dataclass_fields__})
    path = synthesize(request.text, voice_spec(request.voice, request.speed))
    return _finish(load_audio(path), request, (record["start"], record["end"]))


# ---------------------------------------------------------------------------------------------------------------
# Rendering and encoding


def render(requests: list[ClipRequest]) -> Iterator[tuple[dict, np.ndarray | None]]:
    """Synthesize every request (cached, all cores), then yield (record, audio) in order; audio None on failure."""
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


def encode_clips(requests: list[ClipRequest], folder: Path, *, encoder: str, shard_clips: int, chunk: int = 256,
                 progress=None, label: str = "speech", threads: Callable[[], int | None] | None = None,
                 tts_workers: int | None = None) -> list[dict]:
    """Render, encode (with the frozen `encoder`) and store every clip; returns one record per clip (failed ones carry
    an "error"). `threads`, asked before each chunk, caps the encoder's CPU threads while other work shares the
    machine (None: no cap); `tts_workers` caps the synthesis processes (None: every core)."""
    import torch

    from salad_core.model.encoder import SpeechEncoder

    # Synthesis first, in one pool for every clip (a pool per chunk would pay its start-up each time); the chunks
    # below then read the cached audio.
    if progress is not None:
        progress.set_stage(f"{label}: synthesis", len(requests))
    synthesize_many([r.text for r in requests], [voice_spec(r.voice, r.speed) for r in requests], progress=False,
                    on_done=progress.update if progress is not None else None, workers=tts_workers)
    if progress is not None:
        progress.set_stage(f"{label}: encoder frames", len(requests))
    torch.set_flush_denormal(True)  # denormals slow CPU matmuls 5-10x
    model = SpeechEncoder.load(encoder, batch_size=16)
    writer, records = ShardWriter(folder, shard_clips), []
    all_threads = torch.get_num_threads()
    try:
        for start in range(0, len(requests), chunk):
            torch.set_num_threads((threads() if threads else None) or all_threads)
            rendered = list(render(requests[start : start + chunk]))
            good = [(rec, audio) for rec, audio in rendered if audio is not None]
            frames = model.encode([audio for _, audio in good], skip_bad=True)
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


# ---------------------------------------------------------------------------------------------------------------
# Reading a folder of clips


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


def same_encoder(encoder, name: str | None) -> bool:
    """Whether `encoder` (a SpeechEncoder; None: any) is the encoder called `name` (a hub id or its last part)."""
    return encoder is None or str(encoder.name).rstrip("/").split("/")[-1] == str(name).rstrip("/").split("/")[-1]


class ClipBank:
    def __init__(self, root: Path, encoder_name: str, owner: str, fix: str):
        """`encoder_name`: the encoder whose frames are cached; `owner` and `fix` word the errors."""
        self.root, self.encoder_name, self.owner, self.fix = Path(root), encoder_name, owner, fix
        self._shards: dict[str, object] = {}
        self._other_frames: dict[str, dict] = {}  # encoder name -> clip id -> frames (another encoder's)

    @functools.cached_property
    def records(self) -> dict[str, dict]:
        path = self.root / "clips.jsonl"
        return {r["clip_id"]: r for r in read_jsonl(path)} if path.exists() else {}

    @functools.cached_property
    def seconds(self) -> dict[str, float]:
        return {k: r.get("seconds", 0.0) for k, r in self.records.items()}

    def clip(self, clip_id: str) -> dict:
        """A clip's record: text, voice, speed, role, SNR, trim bounds, seconds, frames, shard."""
        record = self.records.get(clip_id)
        if record is None or "error" in record:
            why = "is unknown" if record is None else f"failed to synthesize ({record['error']})"
            raise KeyError(f"Clip {clip_id!r} of {self.owner} {why}. Fix: {self.fix}")
        return record

    def uses_encoder(self, encoder) -> bool:
        """True when `encoder` (a SpeechEncoder) is the one whose frames this folder cached."""
        return same_encoder(encoder, self.encoder_name)

    def features(self, clip_ids: list[str], encoder=None):
        """Encoder frames per clip, (frames, C) float32 tensors, in input order.

        The cached frames; or, for another `encoder` (e.g. the smol preset's Whisper-base), the clips' audio
        encoded by it now and memoised for this process.
        """
        if not self.uses_encoder(encoder):
            return self._encoded(clip_ids, encoder)
        from safetensors import safe_open

        out = []
        for clip_id in clip_ids:
            shard = self.clip(clip_id)["shard"]
            if shard not in self._shards:
                self._shards[shard] = safe_open(str(self.root / "features" / shard), framework="pt")
            out.append(self._shards[shard].get_tensor(clip_id).float())
        return out

    def _encoded(self, clip_ids: list[str], encoder) -> list:
        memo = self._other_frames.setdefault(str(encoder.name), {})
        missing = [c for c in dict.fromkeys(clip_ids) if c not in memo]
        if missing:
            memo.update(zip(missing, encoder.encode([self.audio(c) for c in missing])))
        return [memo[c].float() for c in clip_ids]

    def audio(self, clip_id: str) -> np.ndarray:
        """16 kHz float32 audio of a clip, exactly as it was encoded."""
        return clip_audio(self.clip(clip_id))
