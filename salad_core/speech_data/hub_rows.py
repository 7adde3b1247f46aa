"""A speech corpus read with `datasets`: a hub dataset or a folder saved with `save_to_disk`, streamed (a saved
folder's Arrow files a record batch at a time, so memory stays flat however large the corpus); one utterance per row,
in the dataset's order.

Which column is what: the `columns` given (`--speech-columns audio=...,text=...,doc=...,pos=...,id=...`), else the
first present of `SPEECH_COLUMNS`' usual names. The audio and the transcript must be there; without a document column
each utterance is its own document, without a position column its place is its row, without an id column its id is
`TASK:ROW`. The audio column is read as encoded bytes (or a path), never decoded here, so no decoder package is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from salad_core.errors import InputError
from salad_core.speech_data.rows import BadRow, RowError, number, transcript
from salad_core.speech_data.utterance import AudioRef, Utterance
from salad_core.tasks.hub import DatasetSpec, open_rows

SPEECH_COLUMNS: dict[str, tuple[str, ...]] = {
    "audio": ("audio", "audio_filepath"),
    "text": ("text", "transcript", "transcription", "sentence", "normalized_text"),
    # the unit a reader goes through in order: a chapter before a book, a book before a speaker's whole output
    "doc": ("doc", "document", "chapter_id", "book_id", "episode_id", "session_id", "speaker_id"),
    "pos": ("pos", "position", "begin_time", "start"),
    "id": ("id", "utt_id", "segment_id", "audio_id", "key"),
}
REQUIRED = ("audio", "text")
STREAM_BATCH = 16  # rows of a stream decoded to Python at once (their audio stays encoded)


def open_hub(spec: DatasetSpec, given: Mapping[str, str], source: str):
    """(the rows, streaming unless a saved folder; the column of each field): an `InputError` at once for a mapped
    column the dataset lacks."""
    rows = open_rows(spec, streaming=True)  # raises the install hint when `datasets` is missing
    import datasets

    present = rows.column_names
    if present is None:  # a stream whose features are unknown until read: its first row says
        present = list(next(iter(rows), {}).keys())
    mapping = map_columns(source, present, given)
    if rows.features is not None:
        rows = rows.cast_column(mapping["audio"], datasets.Audio(decode=False))
    return rows, mapping


def map_columns(source: str, present: list[str], given: Mapping[str, str]) -> dict[str, str | None]:
    """The column of each field (None: the default); an `InputError` naming the columns present and the fix."""
    unknown = sorted(set(given) - set(SPEECH_COLUMNS))
    if unknown:
        raise InputError(f"--speech-columns for {source}: unknown field(s) {', '.join(unknown)}. Fix: map only "
                         f"{', '.join(SPEECH_COLUMNS)}, e.g. --speech-columns text=sentence,doc=chapter_id.")
    mapping = {}
    for field, names in SPEECH_COLUMNS.items():
        chosen = given.get(field) or next((n for n in names if n in present), None)
        if (chosen is None and field in REQUIRED) or (chosen is not None and chosen not in present):
            wanted = repr(chosen) if chosen else f"(looked for {', '.join(names)})"
            raise InputError(f"speech source {source}: no {field} column {wanted}; its columns are "
                             f"{', '.join(present)}. Fix: name the column that holds the {field}: --speech-columns "
                             f"{field}=COLUMN.")
        mapping[field] = chosen
    return mapping


def hub_utterances(rows, mapping: dict[str, str | None], spec: DatasetSpec, source: str,
                   start: int = 0) -> Iterator[Utterance | RowError]:
    """Each row from the `start`-th on: its utterance, or a `RowError` naming its index (and id, when it has one)."""
    import datasets

    if isinstance(rows, datasets.Dataset):  # held whole (a dataset made in memory): start at the row itself
        rows = rows.select(range(min(start, len(rows)), len(rows)))
    else:
        rows = _every_row(rows.skip(start))  # a stream: the rows before are read past, their audio not decoded
    for index, row in enumerate(rows, start=start):
        try:
            yield row_utterance(row, index, mapping, spec.task)
        except BadRow as err:
            named = f" (id {row[mapping['id']]})" if mapping["id"] and row.get(mapping["id"]) is not None else ""
            yield RowError.at(source, f"row {index}{named}", err)


def _every_row(rows, batch: int = STREAM_BATCH) -> Iterator[dict]:
    """A stream's rows, all of them, in order, also in a DataLoader worker: iterated directly there, `datasets` would
    give each worker only its share of the stream's files (none to a worker beyond their number), where every worker
    of `SourceDocuments` must read the whole source to find its documents in turn."""
    for block in rows.iter(batch_size=batch):
        columns = list(block)
        yield from (dict(zip(columns, values)) for values in zip(*block.values()))


def row_utterance(row: dict, index: int, mapping: dict[str, str | None], task: str) -> Utterance:
    """The utterance of one row; a `BadRow` saying what is wrong with it."""
    text = transcript(row.get(mapping["text"]))
    utt_id = _value(row, mapping["id"]) or f"{task}:{index}"
    pos = float(index) if mapping["pos"] is None else number(row.get(mapping["pos"]), "pos", minimum=-math.inf)
    return Utterance(utt_id=utt_id, doc=_value(row, mapping["doc"]) or utt_id, pos=pos, text=text,
                     audio=_audio(row.get(mapping["audio"])))


def _value(row: dict, column: str | None) -> str | None:
    value = None if column is None else row.get(column)
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _audio(value: object) -> AudioRef:
    """Encoded bytes, else the file's path (an Audio column read undecoded); a decoded array with its rate."""
    if isinstance(value, str) and value:
        return AudioRef(path=value)
    if isinstance(value, dict):
        if value.get("bytes"):
            return AudioRef(data=value["bytes"])
        if value.get("path"):
            return AudioRef(path=value["path"])
        if value.get("array") is not None and value.get("sampling_rate"):
            return AudioRef(array=value["array"], sample_rate=int(value["sampling_rate"]))
    raise BadRow("the row has no audio", "give every row its audio (bytes or a file), or drop the row")
