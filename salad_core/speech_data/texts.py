"""A user's text for the replay batches (`salad train --text SOURCE[:WEIGHT]`, repeatable), read lazily.

    hf:ORG/NAME[:CONFIG][@SPLIT]   a hub dataset, streamed (local cache only unless SALAD_ALLOW_DOWNLOAD=1); or
    hf:FOLDER[@SPLIT]              a folder saved by `datasets`: the `text` column (`--text-column` for another)
    PATH.parquet, a glob of them   the same column, read a batch of rows at a time
    PATH.jsonl / PATH.jsonl.gz     each line's `text`
    PATH.txt, a folder or glob     plain text: documents separated by a blank line

A weight after the last colon mixes sources, as for `--speech`. A document longer than `max_words` words is cut into
pieces of that many (the LLM's context); blank documents are skipped. Replay batches are text the student and the
teacher both read, to keep the student's text skills (SALAD, Stage I).
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from salad_core.errors import InputError
from salad_core.speech_data.documents import MAX_DOC_WORDS
from salad_core.speech_data.rows import json_lines
from salad_core.speech_data.sources import split_weight
from salad_core.tasks.hub import DatasetSpec

KINDS = ("hf", "parquet", "jsonl", "txt")
TEXT_COLUMN = "text"


@dataclass(frozen=True)
class TextSource:
    spec: str  # as given, less its weight
    kind: str  # one of KINDS
    files: tuple[str, ...]  # the files read, in order (none for hf)
    weight: float = 1.0
    column: str = TEXT_COLUMN
    dataset: DatasetSpec | None = None
    flag: str = "--text"  # the option that named it, for errors (`--pool` names a selection round's pool)

    @classmethod
    def parse(cls, spec: str, column: str = TEXT_COLUMN, flag: str = "--text") -> TextSource:
        """`flag` is the option errors name (`--text`, or `--pool` for a selection round's pool)."""
        body, weight = split_weight(spec)
        if body.startswith("hf:"):
            return cls(body, "hf", (), weight, column, DatasetSpec.parse(body, flag=flag, default_split="train"), flag)
        path = Path(body).expanduser()
        files = sorted(str(p) for p in path.rglob("*.txt")) if path.is_dir() else sorted(glob.glob(str(path)))
        if not files:
            raise InputError(f"{flag} {spec!r}: no file matches. Known kinds: hf:ORG/NAME[:CONFIG][@SPLIT], "
                             f"hf:FOLDER, .parquet, .jsonl(.gz), .txt files or a folder of them. Fix: correct the path.")
        kinds = {_kind(f) for f in files}
        if len(kinds) != 1 or None in kinds:
            raise InputError(f"{flag} {spec!r}: the files are not all of one known kind (parquet, jsonl, txt): "
                             f"{', '.join(sorted(Path(f).name for f in files)[:5])}. Fix: name one kind at a time.")
        return cls(body, kinds.pop(), tuple(files), weight, column, None, flag)


def describe_text(source: TextSource) -> dict:
    """What a run records of a text source: kind, files, column, and a digest of what it reads."""
    from salad_core.assets import sources_digest
    from salad_core.speech_data.digests import source_digest

    if source.kind == "hf":
        digest, of = source_digest("hf", Path(source.dataset.name), source.dataset)
    else:
        digest, of = sources_digest([Path(f) for f in source.files]), f"sha256 of its {len(source.files)} files"
    return {"spec": source.spec, "kind": source.kind, "files": len(source.files), "column": source.column,
            "weight": source.weight, "digest": digest, "digest_of": of}


def _kind(path: str) -> str | None:
    name = path.lower()
    for suffixes, kind in (((".parquet",), "parquet"), ((".jsonl", ".jsonl.gz"), "jsonl"), ((".txt",), "txt")):
        if name.endswith(suffixes):
            return kind
    return None


def iter_texts(source: TextSource, *, start: int = 0, max_words: int = MAX_DOC_WORDS,
               shard: tuple[int, int] | None = None) -> Iterator[str]:
    """The source's documents (cut at `max_words` words), in order, from the `start`-th on; of a hub source, only
    shard `shard[0]` of `shard[1]` (`hub_shards`) when given."""
    pieces = (piece for text in _documents(source, shard) for piece in cut_words(text, max_words))
    for place, piece in enumerate(pieces):
        if place >= start:
            yield piece


def cut_words(text: str, max_words: int) -> Iterator[str]:
    words = text.split()
    for k in range(0, len(words), max_words):
        yield " ".join(words[k : k + max_words])


def hub_shards(source: TextSource) -> int:
    """How many shards (data files) a hub source reads from: each can be read on its own (`iter_texts(shard=)`)."""
    from salad_core.tasks.hub import open_rows

    return max(1, open_rows(source.dataset, streaming=True).num_shards)


def _documents(source: TextSource, shard: tuple[int, int] | None = None) -> Iterator[str]:
    if source.kind == "hf":
        yield from _hub_texts(source, shard)
    for path in source.files:
        yield from {"parquet": _parquet, "jsonl": _jsonl, "txt": _txt}[source.kind](path, source)


def _hub_texts(source: TextSource, shard: tuple[int, int] | None) -> Iterator[str]:
    from salad_core.tasks.hub import open_rows

    rows = open_rows(source.dataset, streaming=True)
    if shard is not None and shard[1] > 1:
        rows = rows.shard(num_shards=shard[1], index=shard[0])
    present = rows.column_names or list(next(iter(rows), {}).keys())
    _require(source, source.column, present)
    for row in rows:
        if isinstance(row.get(source.column), str):
            yield row[source.column]


def _parquet(path: str, source: TextSource) -> Iterator[str]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    _require(source, source.column, table.schema_arrow.names, path)
    for batch in table.iter_batches(columns=[source.column], batch_size=1024):
        yield from (t for t in batch.column(0).to_pylist() if isinstance(t, str))


def _jsonl(path: str, source: TextSource) -> Iterator[str]:
    for _, record in json_lines(Path(path)):
        if isinstance(record, dict) and isinstance(record.get(source.column), str):
            yield record[source.column]


def _txt(path: str, source: TextSource) -> Iterator[str]:
    paragraph: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                paragraph.append(line.strip())
            elif paragraph:
                yield " ".join(paragraph)
                paragraph = []
    if paragraph:
        yield " ".join(paragraph)


def _require(source: TextSource, column: str, present: list[str], where: str = "") -> None:
    if column not in present:
        raise InputError(f"{source.flag} {source.spec!r}{' ' + where if where else ''}: no column {column!r} (columns: "
                         f"{', '.join(present)}). Fix: pass {source.flag}-column with one of them.")
