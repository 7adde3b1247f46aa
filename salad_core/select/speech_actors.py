"""A selection round's speech on Ray: pool documents spoken by an actor pool (TTS, then the frozen encoder's frames)
into the round's clip bank.

A document is planned from its key: its spans, and its voice among the round's, do not depend on the batch it came
in. Each actor call writes its frames under `features/<role>-<first key>/` and hands back the clip records; the
driver alone appends them to `clips.jsonl`, so the bank has one writer.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa

from salad_core.documents import add_clips, plan_document, speak_planned
from salad_core.select.ray_runtime import Resources


def doc_id(role: str, key: int) -> str:
    return f"{role}-{key:016x}"


class SpeakBatches:
    """Ray actor (`map_batches`): documents (key, text) in; (key, doc, clips) out, the spoken document and its clip
    records as JSON ("" for a document whose speech failed)."""

    def __init__(self, folder: str, role: str, voices: tuple[str, ...], speed: float, seed: int,
                 speech_words: tuple[int, int], text_words: tuple[int, int], encoder: str):
        self.folder, self.role, self.voices, self.speed, self.seed = Path(folder), role, voices, speed, seed
        self.words, self.encoder = (speech_words, text_words), encoder

    def __call__(self, table: pa.Table) -> pa.Table:
        keys, texts = table["key"].to_pylist(), table["text"].to_pylist()
        planned = [plan_document(text, doc_id(self.role, key), random.Random(f"{key}/{self.seed}"),
                                 self.voices[key % len(self.voices)], self.speed, self.role, *self.words)
                   for key, text in zip(keys, texts)]
        docs, records = speak_planned(planned, self.folder, doc_id(self.role, min(keys)), role=self.role,
                                      encoder=self.encoder, tts_workers=1)  # the actor has one core
        clips: dict[str, list[dict]] = {}
        for record in records:
            clips.setdefault(record["clip_id"].rsplit("-", 1)[0], []).append(record)
        return pa.table({"key": pa.array(keys, pa.int64()),
                         "doc": [json.dumps(doc) if doc else "" for doc in docs],
                         "clips": [json.dumps(clips.get(doc_id(self.role, key), [])) for key in keys]})


def speak_on_ray(documents: pa.Table, folder: Path, resources: Resources, *, role: str, voices: tuple[str, ...],
                 speed: float, seed: int, speech_words: tuple[int, int], text_words: tuple[int, int], encoder: str,
                 batch_size: int = 16) -> list[dict | None]:
    """The documents (a table with key and text) spoken into `folder`, in their order (None where speech failed)."""
    import ray.data

    setup = {"folder": str(folder), "role": role, "voices": tuple(voices), "speed": speed, "seed": seed,
             "speech_words": tuple(speech_words), "text_words": tuple(text_words), "encoder": encoder}
    spoken = ray.data.from_arrow(documents.select(["key", "text"])).map_batches(
        SpeakBatches, fn_constructor_kwargs=setup, batch_size=batch_size, batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=resources.actors()), num_cpus=1)
    found: dict[int, str] = {}
    for batch in spoken.iter_batches(batch_format="pyarrow", batch_size=None):
        for key, doc, clips in zip(batch["key"].to_pylist(), batch["doc"].to_pylist(), batch["clips"].to_pylist()):
            add_clips(folder, json.loads(clips))
            found[key] = doc
    return [json.loads(found[key]) if found.get(key) else None for key in documents["key"].to_pylist()]
