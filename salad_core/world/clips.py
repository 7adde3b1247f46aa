"""`ClipBank`: the synthesized clips of one folder and their cached encoder frames.

A folder holds `clips.jsonl` (one record per clip: text, voice, speed, role, trim bounds, SNR, seconds, shard) and
`features/shard-NNN.safetensors` (float16 frames keyed by clip id), as `speech.encode_clips` writes them. A built
world is one such folder; a Stage II selection round is another (its probe and selected clips). Training, evaluation
and the pages read frames and audio through this class, whichever folder the clip lives in.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


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
        return encoder is None or str(encoder.name).rstrip("/").split("/")[-1] == self.encoder_name

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
        from salad_core.world.speech import clip_audio

        return clip_audio(self.clip(clip_id))
