"""The text pool a selection round draws from (`salad select --pool SOURCE`), read lazily as a Ray dataset.

    world                                      the Stage I run's world: its selection pool, with domains (the default
                                               for world runs)
    hf:ORG/NAME[:CONFIG][@SPLIT], hf:FOLDER    a hub dataset (local cache unless SALAD_ALLOW_DOWNLOAD=1) or a saved one
    PATH.parquet / PATH.jsonl(.gz), a glob of them; PATH.txt or a folder of .txt files

The file kinds are those of `salad train --text`, read by the same code (speech_data/texts.py). Each file, or each
shard of a hub dataset, is one read task, so a cluster reads a pool in parallel and no task holds more than a batch.
A document is cut into pieces of at most `segment_words` words; blank pieces are dropped. Each piece is keyed by a
63-bit hash of its whitespace-normalised text: exact duplicates share a key, and `drop_duplicates` keeps one of each
(per dedup bucket: select/pool_stages.py). From there on the key names a document (in shards, probes, selections),
whatever the order in which tasks read the pool.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from salad_core.errors import InputError

WORLD = "world"
READ_BATCH = 4096  # rows a read task hands on at a time
SCHEMA = pa.schema([("key", pa.int64()), ("text", pa.string()), ("domain", pa.string())])


def text_key(text: str) -> int:
    """The document's key: a 63-bit hash of its text with whitespace normalised (non-negative, fits int64)."""
    digest = hashlib.blake2b(" ".join(text.split()).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass(frozen=True)
class PoolSource:
    spec: str  # as given
    column: str = "text"  # the text column of hf, parquet and JSONL pools
    preset: str | None = None  # the world's preset, for `world`

    @classmethod
    def parse(cls, spec: str | None, column: str = "text", preset: str | None = None) -> PoolSource:
        """`spec` None or "world" means the world's pool, which needs the world's `preset`."""
        spec = spec or WORLD
        if spec == WORLD:
            from salad_core.presets import get_preset

            if preset is None or get_preset(preset).world is None:
                raise InputError(f"--pool world: the run trained the {preset!r} preset, which has no world and so no "
                                 "pool of its own. Fix: pass --pool SOURCE (hf:ORG/NAME, a parquet or JSONL glob, or "
                                 "a folder of .txt files).")
            return cls(spec, column, preset)
        _text_source(spec, column)  # fails now, on the driver, if nothing is there
        return cls(spec, column)

    def parts(self) -> list[dict]:
        """The read tasks: one per file, or per shard of a hub dataset, or the world's pool as one."""
        if self.spec == WORLD:
            return [{"spec": self.spec, "preset": self.preset, "file": "", "shard": 0, "shards": 1}]
        source = _text_source(self.spec, self.column)
        if source.kind == "hf":
            from salad_core.speech_data.texts import hub_shards

            n = hub_shards(source)
            return [{"spec": self.spec, "column": self.column, "file": "", "shard": i, "shards": n} for i in range(n)]
        return [{"spec": self.spec, "column": self.column, "file": f, "shard": 0, "shards": 1} for f in source.files]


def _text_source(spec: str, column: str):
    from salad_core.speech_data.texts import TextSource

    return TextSource.parse(spec, column, flag="--pool")


def _part_texts(part: dict, segment_words: int) -> Iterator[tuple[str, str]]:
    """(text, domain) of one read task's documents, cut at `segment_words` words."""
    from salad_core.speech_data.texts import cut_words, iter_texts

    if part["spec"] == WORLD:
        from salad_core.world import preset_world

        texts, domains = preset_world(part["preset"]).selection_pool()
        yield from ((piece, domain) for text, domain in zip(texts, domains) for piece in cut_words(text, segment_words))
        return
    source = _text_source(part["spec"], part["column"])
    if part["file"]:
        source = dataclasses.replace(source, files=(part["file"],))
    shard = (part["shard"], part["shards"]) if source.kind == "hf" else None
    yield from ((text, "") for text in iter_texts(source, max_words=segment_words, shard=shard))


def read_part(batch: pa.Table, segment_words: int) -> Iterator[pa.Table]:
    """Ray map_batches function: the documents of the read tasks in `batch` (one row each), a table per
    READ_BATCH rows."""
    for part in batch.to_pylist():
        keys, texts, domains = [], [], []
        for text, domain in _part_texts(part, segment_words):
            if text.strip():
                keys.append(text_key(text))
                texts.append(text)
                domains.append(domain)
            if len(keys) == READ_BATCH:
                yield _table(keys, texts, domains)
                keys, texts, domains = [], [], []
        if keys:
            yield _table(keys, texts, domains)


def _table(keys: list[int], texts: list[str], domains: list[str]) -> pa.Table:
    return pa.Table.from_pydict({"key": keys, "text": texts, "domain": domains}, schema=SCHEMA)


def pool_dataset(source: PoolSource, segment_words: int):
    """The pool's documents (columns key, text, domain), duplicates included, read lazily."""
    import ray.data

    parts = source.parts()
    if not parts:
        raise InputError(f"--pool {source.spec!r} names nothing to read. Fix: name files or a dataset with texts.")
    return (ray.data.from_items(parts, override_num_blocks=len(parts))
            .map_batches(read_part, batch_size=1, batch_format="pyarrow", fn_kwargs={"segment_words": segment_words}))


def drop_duplicates(table: pa.Table) -> pa.Table:
    """One row per key: of rows that share one, the first by (key, domain) — the same whatever the read order."""
    if table.num_rows == 0:
        return table
    order = np.lexsort((np.asarray(table["domain"].to_pylist(), dtype=object).astype(str),
                        table["key"].to_numpy()))
    table = table.take(pa.array(order))
    keys = table["key"].to_numpy()
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return table.filter(pa.array(first))

