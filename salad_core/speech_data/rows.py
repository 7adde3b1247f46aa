"""A source's rows as its readers see them: the error that names a bad row, and a JSONL file read line by line.

Every reader (hub, Lhotse, salad JSONL) yields an `Utterance` per good row and a `RowError` per bad one, so one loop
(`sources.iter_utterances`) decides what happens to the bad ones; the rows it skips to resume a run count both.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

from salad_core.errors import InputError
from salad_core.speech_data.utterance import Word

OnBad = Callable[["RowError"], None]


class RowError(InputError):
    """A row of a speech source that cannot be an utterance; the message names the source, the row and the fix."""

    @classmethod
    def at(cls, source: str, row: str, problem: Exception | str) -> RowError:
        """`source`: the spec as the user gave it; `row`: "line 7", "row 12", "cut u3"; `problem`: what and the fix."""
        return cls(f"speech source {source}, {row}: {problem}")


class BadRow(ValueError):
    """Raised inside a reader for a row it cannot use; the reader turns it into a `RowError` naming the row."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem}. Fix: {fix}")


def transcript(value: object) -> str:
    """The stripped transcript; a `BadRow` when there is none (a row without words cannot teach anything)."""
    if not isinstance(value, str) or not value.strip():
        raise BadRow(f"the transcript is {'missing' if value is None else 'empty'}",
                     "give the row its transcript, or drop the row")
    return value.strip()


def number(value: object, name: str, *, minimum: float = 0.0) -> float:
    """A finite number >= `minimum` (a time, a place); a `BadRow` naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadRow(f"{name} {value!r} is not a number", f"give {name} as a number of seconds or a place")
    try:
        out = float(value)
    except ValueError:
        raise BadRow(f"{name} {value!r} is not a number", f"give {name} as a number") from None
    if not math.isfinite(out) or out < minimum:
        raise BadRow(f"{name} {value!r} is out of range", f"give {name} as a finite number >= {minimum:g}")
    return out


def word(text: object, start: object, end: object) -> Word:
    """One word timing, checked: a non-empty word, 0 <= start <= end (seconds from the utterance's start)."""
    fix = "give each word as [word, start, end] in seconds from the start of the utterance's audio"
    if not isinstance(text, str) or not text.strip():
        raise BadRow(f"the word timing {[text, start, end]!r} has no word", fix)
    first, last = number(start, "a word's start"), number(end, "a word's end")
    if last < first:
        raise BadRow(f"the word {text!r} ends ({last:g} s) before it starts ({first:g} s)", fix)
    return Word(text.strip(), first, last)


def json_lines(path: Path, start: int = 0) -> Iterator[tuple[int, dict | BadRow]]:
    """(line number, its record or why it is none) for each non-blank line of a JSONL file (gzipped when it ends in
    .gz), from the `start`-th non-blank line on: the lines skipped are counted, not parsed."""
    for row, (line_number, line) in enumerate(_lines(path)):
        if row >= start:
            yield line_number, _record(line)


def count_rows(path: Path) -> int:
    """How many records (non-blank lines) a JSONL file holds, without parsing them."""
    return sum(1 for _ in _lines(path))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as lines:
        for line_number, line in enumerate(lines, start=1):
            if line.strip():
                yield line_number, line


def _record(line: str) -> dict | BadRow:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        return BadRow(f"not valid JSON ({err.msg} at column {err.colno})", "write one JSON object per line")
    if not isinstance(record, dict):
        return BadRow(f"a JSON {type(record).__name__}, not an object", "write one JSON object per line")
    return record
