"""Deterministic item assembly: split assignment, distractor picking, answer placement.

Everything here is a function of (task, doc_id) through sha256, never of Python's `random` or of an item's
position in a list, so adding items to a task never moves an existing item to another split, changes its
distractors or its answer position (the property lm-evaluation-harness gets from fixed dataset splits).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from salad_core.tasks.item import Item
from salad_core.text import stable_hash, unit_interval

N_CHOICES = 4
FEWSHOT_FRACTION = 0.05
DEV_FRACTION = 0.25

# Characters that text-to-speech engines read badly or not at all; questions must avoid them.
UNSPEAKABLE = frozenset("+×*/=%&#@$<>^_~|\\{}[]")


def assign_split(task: str, doc_id: str, fewshot: float = FEWSHOT_FRACTION, dev: float = DEV_FRACTION) -> str:
    """'fewshot' for the first `fewshot` of the hash range, then 'dev' for the next `dev`, else 'test'."""
    u = unit_interval(task, "split", doc_id)
    if u < fewshot:
        return "fewshot"
    return "dev" if u < fewshot + dev else "test"


def speakable(text: str) -> bool:
    return not (UNSPEAKABLE & set(text))


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def pick_distractors(
    task: str,
    doc_id: str,
    answer: str,
    tiers: Iterable[Iterable[str]],
    exclude: Iterable[str] = (),
    k: int = N_CHOICES - 1,
    prefix_free: bool = False,
) -> list[str]:
    """Up to `k` distinct wrong options, taken from the most plausible tier first.

    Within a tier candidates are ordered by a hash of (task, doc_id, candidate), so the pick is fixed per item
    yet varies between items. Candidates equal to the answer or to anything in `exclude` (other correct
    answers, case- and space-insensitive) are skipped. With `prefix_free`, so is a candidate whose words begin
    another option's words or the other way round ("twenty" next to "twenty six", "n" next to "n a"): a
    log-likelihood scorer that reads an option without what follows it would prefer the shorter one whatever it
    knows.
    """
    banned = {_norm(answer)} | {_norm(e) for e in exclude}
    options = [_norm(answer).split()]
    picked: list[str] = []
    for tier in tiers:
        ranked = sorted(set(tier), key=lambda c: stable_hash(task, "distractor", doc_id, c))
        for candidate in ranked:
            if len(picked) == k:
                return picked
            words = _norm(candidate).split()
            if not candidate.strip() or _norm(candidate) in banned:
                continue
            if prefix_free and any(_word_prefix(words, other) for other in options):
                continue
            picked.append(candidate)
            banned.add(_norm(candidate))
            options.append(words)
    return picked


def _word_prefix(a: list[str], b: list[str]) -> bool:
    """One word sequence begins the other."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def place_answer(task: str, doc_id: str, answer: str, distractors: Sequence[str]) -> tuple[tuple[str, ...], int]:
    """Choices with the answer at a hash-chosen index (uniform over positions across items)."""
    position = stable_hash(task, "position", doc_id) % (len(distractors) + 1)
    choices = list(distractors)
    choices.insert(position, answer)
    return tuple(choices), position


def make_item(
    task: str,
    doc_id: str,
    question: str,
    answer: str,
    distractors: Sequence[str],
    domain: str,
    fewshot: float = FEWSHOT_FRACTION,
) -> Item | None:
    """An `Item` with 4 choices, or None when there are too few distractors or the question is not speakable.

    Builders skip a None and go on: one odd data row never stops a task from building.
    """
    if len(distractors) != N_CHOICES - 1 or not speakable(question):
        return None
    choices, position = place_answer(task, doc_id, answer, distractors)
    if len({_norm(c) for c in choices}) != N_CHOICES:
        return None
    return Item(
        task=task,
        doc_id=doc_id,
        split=assign_split(task, doc_id, fewshot=fewshot),
        question=question,
        choices=choices,
        answer=position,
        domain=domain,
    )


def near_numbers(value: int, offsets: Iterable[int], minimum: int = 0) -> list[int]:
    """value + offset for each offset, keeping those >= minimum and != value, in the given order."""
    return [value + o for o in offsets if value + o >= minimum and o != 0]
