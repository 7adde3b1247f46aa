"""A world's natural speech written out as a user's speech corpus would come: one row per utterance, with its audio,
transcript, document and position, as a `datasets` folder (`salad world export --speech-dataset`).

Each span of a natural-speech document becomes one utterance, in order (the documents in a seeded shuffle: the world
lists them by domain, and a streamed source is read in its own order): a spoken span is the clip the world trains
on; a read span is spoken now in the document's voice and speed (it has no clip in the world, and a natural corpus
has audio for every utterance). `salad train --speech hf:FOLDER` then trains on the same documents through the path a
user's corpus takes, which is how the two paths are compared (docs/results/engineering.md).
"""

from __future__ import annotations

import functools
import io
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from salad_core.audio import SAMPLE_RATE
from salad_core.clips import ClipRequest, render
from salad_core.documents import speakable_text
from salad_core.progress import NoProgress, Progress

COLUMNS = ("id", "audio", "text", "doc", "pos", "domain", "spoken_in_world")
EXPORT_VERSION = "v1"  # in the dataset's fingerprint: raise it when the rows change
CHUNK_DOCS = 200  # documents whose read spans are synthesized in one call (all cores, cached)


def _flac(audio: np.ndarray) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, audio, SAMPLE_RATE, format="FLAC")
    return buffer.getvalue()


def _read_span_requests(world, docs: list) -> list[ClipRequest]:
    """The read spans of `docs`, each one TTS request in its document's voice and speed."""
    requests = []
    for doc in docs:
        first = world.bank.clip(next(s.clip_id for s in doc.spans if s.clip_id))
        for k, span in enumerate(doc.spans):
            if span.clip_id is None and speakable_text(span.text):
                requests.append(ClipRequest(f"{doc.doc_id}-read-{k:02d}", speakable_text(span.text), first["voice"],
                                            first["speed"], "export"))
    return requests


def utterance_rows(world, progress: bool = False) -> Iterator[dict]:
    """One row per span of each natural-speech document (see the module's docstring)."""
    docs = [d for d in world.speech_docs() if any(s.clip_id for s in d.spans)]
    random.Random(f"export/{world.name}").shuffle(docs)  # the world lists them by domain; a corpus need not
    with Progress(len(docs), "export speech") if progress else NoProgress() as bar:
        yield from _chunked_rows(world, docs, bar)


def _chunked_rows(world, docs: list, bar) -> Iterator[dict]:
    for start in range(0, len(docs), CHUNK_DOCS):
        chunk = docs[start : start + CHUNK_DOCS]
        read = {record["clip_id"]: audio for record, audio in render(_read_span_requests(world, chunk))}
        for doc in chunk:
            for k, span in enumerate(doc.spans):
                audio = world.audio(span.clip_id) if span.clip_id else read.get(f"{doc.doc_id}-read-{k:02d}")
                if audio is None:  # a span with nothing to speak ("?"), or a failed synthesis: the corpus lacks it
                    continue
                yield {"id": f"{doc.doc_id}-{k:02d}", "audio": {"bytes": _flac(audio), "path": None},
                       "text": span.text, "doc": doc.doc_id, "pos": k, "domain": doc.domain,
                       "spoken_in_world": span.clip_id is not None}
            bar.update(1)


def export_speech_dataset(world, out: str | Path, progress: bool = False) -> int:
    """Write the rows as a `datasets` folder (`save_to_disk`) at `out`; returns the number of utterances."""
    from datasets import Audio, Dataset, Features, Value

    # the audio goes in as the Audio feature's storage (bytes, path) and is cast to it after: encoding through the
    # feature would need a decoder package (torchcodec) that reading with decode=False does not
    audio = {"bytes": Value("binary"), "path": Value("string")}
    features = Features({"id": Value("string"), "audio": audio, "text": Value("string"),
                         "doc": Value("string"), "pos": Value("int32"), "domain": Value("string"),
                         "spoken_in_world": Value("bool")})
    with tempfile.TemporaryDirectory(prefix="salad-export-") as scratch:  # datasets' arrow cache, not ~/.cache
        dataset = Dataset.from_generator(functools.partial(utterance_rows, world, progress), features=features,
                                         cache_dir=scratch, fingerprint=f"{world.name}-speech-{EXPORT_VERSION}")
        dataset = dataset.cast_column("audio", Audio(sampling_rate=SAMPLE_RATE))
        dataset.save_to_disk(str(out))
    return len(dataset)
