"""JSONL manifests: a user's own (spoken) multiple-choice benchmark, one JSON object per line.

Format (docs/manifest.md): required `task`, `question`, `choices` (>= 2 distinct strings), `answer` (index);
optional `audio` (relative paths resolve against the manifest's folder), `doc_id`, `domain`, `split`.
Blank lines and lines starting with '#' are skipped. A bad line is reported as a `ManifestError` with its line
number and what is wrong, and the other lines still load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salad_core.assets import AssetError
from salad_core.tasks.item import SPLITS, Item

REQUIRED = ("task", "question", "choices", "answer")
OPTIONAL = ("audio", "doc_id", "domain", "split")
DEFAULT_DOMAIN = "general"
DEFAULT_SPLIT = "test"
EXAMPLE = '{"task": "my_quiz", "question": "What is 2 plus 2?", "choices": ["3", "4"], "answer": 1}'


@dataclass(frozen=True)
class ManifestError:
    """One skipped manifest line: its 1-based number and what is wrong with it."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ManifestResult:
    path: Path
    items: list[Item] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)

    def tasks(self) -> list[str]:
        return sorted({item.task for item in self.items})


class _BadLine(ValueError):
    pass


def default_doc_id(question: str) -> str:
    """A doc_id from the question text, so reordering or inserting lines keeps ids stable."""
    return "q-" + hashlib.sha256(question.encode("utf-8")).hexdigest()[:12]


def _text(record: dict[str, Any], key: str, default: str | None = None) -> str | None:
    """A string field, stripped. Optional fields (those with no entry in REQUIRED) may be absent or null."""
    value = record.get(key)
    if value is None and key not in REQUIRED:
        return default
    if not isinstance(value, str) or not value.strip():
        raise _BadLine(f"field '{key}' must be a non-empty string, got {json.dumps(value)}")
    return value.strip()


def _choices(record: dict[str, Any]) -> tuple[str, ...]:
    choices = record["choices"]
    if not isinstance(choices, list) or not all(isinstance(c, str) and c.strip() for c in choices):
        raise _BadLine(f"field 'choices' must be a list of non-empty strings, got {json.dumps(choices)}")
    if len(choices) < 2:
        raise _BadLine(f"field 'choices' needs at least 2 options, got {len(choices)}")
    if len({c.strip() for c in choices}) != len(choices):
        raise _BadLine(f"field 'choices' repeats an option: {json.dumps(choices)}")
    return tuple(c.strip() for c in choices)


def _answer(record: dict[str, Any], n_choices: int) -> int:
    answer = record["answer"]
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise _BadLine(f"field 'answer' must be an integer index into 'choices', got {json.dumps(answer)}")
    if not 0 <= answer < n_choices:
        raise _BadLine(f"field 'answer' is {answer}, outside 0..{n_choices - 1} for {n_choices} choices")
    return answer


def _audio(record: dict[str, Any], folder: Path) -> str | None:
    audio = _text(record, "audio")
    if audio is None:
        return None
    path = Path(audio).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise _BadLine(f"audio file '{audio}' does not exist (looked for {path.resolve()})")
    return str(path.resolve())


def parse_record(record: Any, folder: Path) -> Item:
    """One decoded manifest object -> Item; raises ValueError with a message naming the bad field."""
    if not isinstance(record, dict):
        raise _BadLine(f"expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise _BadLine(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(REQUIRED + OPTIONAL)}")
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise _BadLine(f"missing field(s) {', '.join(missing)}")
    task, question = _text(record, "task"), _text(record, "question")
    if ":" in task:
        raise _BadLine(f"field 'task' must not contain ':', got {json.dumps(task)}")
    choices = _choices(record)
    split = _text(record, "split", DEFAULT_SPLIT)
    if split not in SPLITS:
        raise _BadLine(f"field 'split' must be one of {', '.join(SPLITS)}, got {json.dumps(split)}")
    return Item(
        task=task,
        doc_id=_text(record, "doc_id") or default_doc_id(question),
        split=split,
        question=question,
        choices=choices,
        answer=_answer(record, len(choices)),
        domain=_text(record, "domain", DEFAULT_DOMAIN),
        audio=_audio(record, folder),
    )


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise AssetError(f"Manifest {path} does not exist. Fix: pass the path of a .jsonl file (see docs/manifest.md)")
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise AssetError(f"Manifest {path} is empty. Fix: write one JSON object per line, e.g. {EXAMPLE}")
    return text.splitlines()


def load_manifest(path: str | Path) -> ManifestResult:
    """Load every good line of a JSONL manifest; bad lines land in `.errors` and are skipped."""
    path = Path(path).expanduser()
    lines = _read_lines(path)
    result = ManifestResult(path=path)
    first_seen: dict[str, int] = {}  # item_id -> line number
    content_lines = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        content_lines += 1
        try:
            item = parse_record(json.loads(line), path.parent)
        except json.JSONDecodeError as err:
            result.errors.append(ManifestError(number, f"invalid JSON: {err.msg} at column {err.colno}"))
            continue
        except ValueError as err:
            result.errors.append(ManifestError(number, str(err)))
            continue
        if item.item_id in first_seen:
            first = first_seen[item.item_id]
            message = f"duplicate doc_id '{item.doc_id}' in task '{item.task}' (first used on line {first})"
            result.errors.append(ManifestError(number, message + "; give each item its own doc_id"))
            continue
        first_seen[item.item_id] = number
        result.items.append(item)
    if content_lines == 0:
        raise AssetError(
            f"Manifest {path} has no items, only blank or '#' comment lines. Fix: add lines like {EXAMPLE}"
        )
    return result
