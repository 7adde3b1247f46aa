"""The 'quiz' task from the bsdgames quiz(6) data files, restricted to categories with unambiguous answers.

Categories: US state capitals (both directions), state postal abbreviations, US presidents (successor, and who
took office in a given year), names of baby animals. The data-file syntax (quiz(6) man page): lines of
colon-separated fields, `a|b` alternatives, `{x}` optional parts, `[..]` grouping, backslash quoting and line
continuation. The canonical answer is the first alternative with every optional part included
("{G{eorge} }Washington" -> "George Washington").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from salad_core.tasks.choices import make_item, pick_distractors
from salad_core.tasks.item import Item
from salad_core.tasks.registry import TaskSpec, register
from salad_core.tasks.sources import quiz_dir

TASK = "quiz"
NEARBY_PRESIDENTS = 4


def read_records(path: Path) -> Iterator[list[str]]:
    """Records of a quiz data file as lists of raw field patterns (continuation lines joined)."""
    pending = ""
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending += line[:-1]
            continue
        record, pending = pending + line, ""
        if record.strip():
            yield split_top(record, ":")


def split_top(text: str, sep: str) -> list[str]:
    """Split at `sep` outside any {..} or [..] and not escaped by a backslash."""
    parts, current, depth, i = [], [], 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        depth += (ch in "{[") - (ch in "}]")
        if ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _closing(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "\\":
            continue
        depth += (text[i] in "{[") - (text[i] in "}]")
        if depth == 0:
            return i
    raise ValueError(f"Unbalanced brackets in quiz pattern {text!r}")


def _expand(pattern: str) -> str:
    first = split_top(pattern, "|")[0]
    out, i = [], 0
    while i < len(first):
        ch = first[i]
        if ch == "\\" and i + 1 < len(first):
            out.append(first[i + 1])
            i += 2
        elif ch in "{[":
            end = _closing(first, i)
            out.append(_expand(first[i + 1 : end]))
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def canonical(pattern: str) -> str:
    """The first alternative of a pattern with all optional parts kept, without parenthetical remarks."""
    text = re.sub(r"\s*\([^)]*\)", "", _expand(pattern))
    return " ".join(text.split())


def alternatives(pattern: str) -> list[str]:
    """Canonical form of each top-level alternative: 'colt|foal' -> ['colt', 'foal']."""
    return [c for c in (canonical(p) for p in split_top(pattern, "|")) if c]


def _states(folder: Path) -> list[Item]:
    rows = [(canonical(r[0]), canonical(r[1]), canonical(r[2])) for r in read_records(folder / "state") if len(r) >= 3]
    capitals = [cap for _, cap, _ in rows]
    states = [state for state, _, _ in rows]
    items = []
    for state, capital, abbr in rows:
        doc = f"state-capital/{state}"
        wrong = pick_distractors(TASK, doc, capital, [capitals])
        question = f"What is the capital of the US state of {state}?"
        items.append(make_item(TASK, doc, question, capital, wrong, "geography"))
        doc = f"capital-state/{capital}"
        wrong = pick_distractors(TASK, doc, state, [states])
        items.append(make_item(TASK, doc, f"Which US state has {capital} as its capital?", state, wrong, "geography"))
        doc = f"abbreviation/{state}"
        same_initial = [a for _, _, a in rows if a[0] == abbr[0]]
        wrong = pick_distractors(TASK, doc, abbr, [same_initial, [a for _, _, a in rows]])
        question = f"What is the two-letter postal abbreviation of {state}?"
        items.append(make_item(TASK, doc, question, abbr, wrong, "geography"))
    return [it for it in items if it is not None]


def _window(names: list[str], center: int) -> list[str]:
    return names[max(0, center - NEARBY_PRESIDENTS) : center + NEARBY_PRESIDENTS + 1]


def _presidents(folder: Path) -> list[Item]:
    rows = [r for r in read_records(folder / "pres") if len(r) >= 4]
    names = [canonical(r[0]) for r in rows]
    starts = [canonical(r[1])[:4] for r in rows]
    items = []
    for i, (name, start, row) in enumerate(zip(names, starts, rows)):
        successor = canonical(row[3])
        if successor and names.count(name) == 1:
            doc = f"successor/{name}"
            wrong = pick_distractors(TASK, doc, successor, [_window(names, i + 1), names], exclude=[name])
            question = f"Who became president of the United States after {name}?"
            items.append(make_item(TASK, doc, question, successor, wrong, "history"))
        if start.isdigit() and starts.count(start) == 1:
            doc = f"took-office/{start}"
            wrong = pick_distractors(TASK, doc, name, [_window(names, i), names])
            question = f"Who became president of the United States in {start}?"
            items.append(make_item(TASK, doc, question, name, wrong, "history"))
    return [it for it in items if it is not None]


def _babies(folder: Path) -> list[Item]:
    """One item per animal listed under a single baby name line; animals under several lines (a fox is a
    'kitten' and a 'pup') are left out, as real usage is looser than the file and the question would be unfair."""
    records = [r for r in read_records(folder / "babies") if len(r) >= 2]
    lines_of: dict[str, list[list[str]]] = {}  # animal -> baby-name alternatives of each line naming it
    for record in records:
        for animal in alternatives(record[1]):
            lines_of.setdefault(animal, []).append(alternatives(record[0]))
    every_name = [name for record in records for name in alternatives(record[0])]
    items = []
    for animal, lines in lines_of.items():
        if len(lines) != 1:
            continue
        names = lines[0]
        doc = f"baby/{animal}"
        # 'puppy' must not be a wrong option when 'pup' is right
        similar = [n for n in every_name if any(n.startswith(v) or v.startswith(n) for v in names)]
        wrong = pick_distractors(TASK, doc, names[0], [every_name], exclude=similar)
        items.append(make_item(TASK, doc, f"What is a baby {animal} called?", names[0], wrong, "language"))
    return [it for it in items if it is not None]


def build_quiz() -> list[Item]:
    folder = quiz_dir()
    return _states(folder) + _presidents(folder) + _babies(folder)


def check_quiz() -> None:
    quiz_dir()


QUIZ = register(
    TaskSpec(
        name=TASK,
        version="1.0",
        domain="general",
        description="bsdgames quiz trivia: US state capitals and abbreviations, US presidents, baby animals.",
        source="Debian bsdgames (quiz data files)",
        build=build_quiz,
        check=check_quiz,
    )
)
