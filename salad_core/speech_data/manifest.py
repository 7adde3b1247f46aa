"""A salad speech manifest: a JSONL file (optionally gzipped), one utterance per line.

    {"audio": "clips/a.wav", "text": "it was the best of times", "doc": "tale-ch1", "pos": 3,
     "id": "a", "sampling_rate": 16000, "offset": 12.5, "duration": 4.2, "words": [["it", 0.0, 0.2], ...]}

`audio` (a path relative to the manifest's folder, or absolute) and `text` are required. `id` defaults to
`MANIFEST:LINE`, `doc` to the utterance's own id (each its own document), `pos` to the line number. `sampling_rate`
is the rate the row declares for its file (checked when the audio loads), `offset`/`duration` the stretch of the file
in seconds (a long recording is read only there), `words` its word timings in seconds from the stretch's start.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from salad_core.speech_data.rows import BadRow, RowError, json_lines, number, transcript, word
from salad_core.speech_data.utterance import AudioRef, Utterance, Word

AUDIO_FIX = "give each row `audio`: a file path, relative to the manifest's folder or absolute"


def read_manifest(path: Path, source: str, start: int = 0) -> Iterator[Utterance | RowError]:
    """Each non-blank line from the `start`-th on, in file order: its utterance, or a `RowError` naming the line."""
    for line, record in json_lines(path, start):
        try:
            if isinstance(record, BadRow):
                raise record
            yield utterance(record, f"{path.name}:{line}", float(line), path.parent)
        except BadRow as err:
            yield RowError.at(source, f"line {line}", err)


def utterance(record: dict, default_id: str, default_pos: float, folder: Path) -> Utterance:
    """The utterance a manifest record describes; a `BadRow` saying what is wrong with it."""
    text = transcript(record.get("text"))
    utt_id = _optional_str(record, "id") or default_id
    duration = record.get("duration")
    return Utterance(utt_id=utt_id, doc=_optional_str(record, "doc") or utt_id,
                     pos=default_pos if record.get("pos") is None else number(record["pos"], "pos", minimum=-math.inf),
                     text=text, audio=_audio(record, folder),
                     seconds=None if duration is None else _seconds(duration), words=_words(record.get("words")))


def _optional_str(record: dict, key: str) -> str | None:
    value = record.get(key)
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _audio(record: dict, folder: Path) -> AudioRef:
    audio = record.get("audio")
    if not isinstance(audio, str) or not audio.strip():
        raise BadRow("the audio field is missing" if audio is None else f"audio {audio!r} is not a path", AUDIO_FIX)
    path = Path(audio.strip()).expanduser()
    duration = record.get("duration")
    return AudioRef(path=str(path if path.is_absolute() else folder / path), sample_rate=_rate(record),
                    offset=number(record.get("offset") or 0, "offset"),
                    duration=None if duration is None else _seconds(duration))


def _rate(record: dict) -> int | None:
    rate = record.get("sampling_rate")
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0 or rate % 1:
        raise BadRow(f"sampling_rate {rate!r} is not a whole number of Hz", "give sampling_rate as e.g. 16000")
    return int(rate)


def _seconds(value: object) -> float:
    seconds = number(value, "duration")
    if seconds == 0:
        raise BadRow("duration is 0", "give the stretch's length in seconds, or leave duration out (to the end)")
    return seconds


def _words(entries: object) -> tuple[Word, ...] | None:
    if entries is None:
        return None
    fix = "give words as [[word, start, end], ...] in seconds from the start of the utterance's audio"
    if not isinstance(entries, list):
        raise BadRow(f"words is a {type(entries).__name__}, not a list", fix)
    for entry in entries:
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            raise BadRow(f"the words entry {entry!r} is not [word, start, end]", fix)
    return tuple(word(*entry) for entry in entries)
