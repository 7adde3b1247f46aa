"""The mini world's generated domains: arithmetic in number words, calendar order, and bAbI-style stories.

Arithmetic and calendar facts are finite tables (every sum of two small numbers, every day n days after another),
so the corpus can state them all; stories are drawn fresh from a seeded generator, so a test story is never in the
corpus and answering it is a skill (tracking who went where), not a memorised fact.
"""

from __future__ import annotations

import random

from salad_core.text import stable_hash
from salad_core.text import number_words
from salad_core.world.domains import Fact

SUM_MAX = 12  # a + b with 0 <= a, b <= SUM_MAX
PRODUCT_RANGE = range(2, 11)  # a * b with a, b in 2..10


def _cap(facts: list[Fact], size: int, seed: int) -> list[Fact]:
    """A fixed, hash-chosen subset of `size` facts (all when size is 0), in the original order."""
    if size <= 0 or size >= len(facts):
        return facts
    keep = set(sorted((f.key for f in facts), key=lambda k: stable_hash(str(seed), "subset", k))[:size])
    return [f for f in facts if f.key in keep]


def _near_words(value: int, offsets: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(number_words(value + d) for d in offsets if value + d >= 0)


def _operation(a: int, op: str, b: int, result: int, near: tuple[int, ...]) -> Fact:
    aw, bw, rw = number_words(a), number_words(b), number_words(result)
    return Fact(f"{op}/{a}/{b}", (f"{aw} {op} {bw} is {rw} .",), f"what is {aw} {op} {bw} ?", rw,
                (_near_words(result, near), _near_words(result, (3, -3, 4, -4, 5))))


def arithmetic_facts(size: int, seed: int) -> list[Fact]:
    """Every sum of two numbers up to SUM_MAX and every product in PRODUCT_RANGE; `size` caps the count."""
    facts = [_operation(a, "plus", b, a + b, (1, -1, 2, -2, 10))
             for a in range(SUM_MAX + 1) for b in range(SUM_MAX + 1)]
    facts += [_operation(a, "times", b, a * b, (a, -a, b, -b, 1, -1))
              for a in PRODUCT_RANGE for b in PRODUCT_RANGE]
    return _cap(facts, size, seed)


DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
DAY_STEPS = (1, 2, 3)
MONTH_STEPS = (1, 2, 3, 4, 5)


def _shift_phrase(unit: str, steps: int, direction: str) -> str:
    """ "the day after", "two months before" """
    return f"the {unit} {direction}" if steps == 1 else f"{number_words(steps)} {unit}s {direction}"


def _cycle_facts(unit: str, names: tuple[str, ...], steps: tuple[int, ...]) -> list[Fact]:
    facts = []
    for i, name in enumerate(names):
        for n in steps:
            for direction, sign in (("after", 1), ("before", -1)):
                target = names[(i + sign * n) % len(names)]
                near = tuple(names[(i + sign * k) % len(names)] for k in range(1, len(names)) if k != n)
                phrase = _shift_phrase(unit, n, direction)
                facts.append(Fact(f"{unit}/{name}/{direction}/{n}", (f"{phrase} {name} is {target} .",),
                                  f"what is {phrase} {name} ?", target, (near,)))
    return facts


def calendar_facts(size: int, seed: int) -> list[Fact]:
    """Days 1-3 and months 1-5 after and before each other."""
    return _cap(_cycle_facts("day", DAYS, DAY_STEPS) + _cycle_facts("month", MONTHS, MONTH_STEPS), size, seed)


PEOPLE = ("mary", "john", "sandra", "daniel", "anna", "peter", "lucy", "tom")
PLACES = ("kitchen", "garden", "bedroom", "bathroom", "office", "hallway", "park", "school")
MOVES = ("went to", "moved to", "walked to", "ran to")
DEFAULT_STORIES = 320


def _story(rng: random.Random) -> tuple[str, str, str, tuple[str, ...]]:
    """(story, person asked about, answer, other places mentioned) for a 2-3 sentence story."""
    people = rng.sample(PEOPLE, 2)
    n = rng.choice((2, 3))
    moves = [(people[k % 2] if k < 2 else rng.choice(people), rng.choice(PLACES)) for k in range(n)]
    story = " ".join(f"{who} {rng.choice(MOVES)} the {where} ." for who, where in moves)
    asked = rng.choice(people)
    answer = [where for who, where in moves if who == asked][-1]
    mentioned = tuple(dict.fromkeys(where for _, where in moves if where != answer))
    return story, asked, answer, mentioned


def story_facts(size: int, seed: int) -> list[Fact]:
    """`size` distinct stories (DEFAULT_STORIES when 0) from a generator seeded by `seed`."""
    rng = random.Random(f"stories/{seed}")
    count = size or DEFAULT_STORIES
    facts: dict[str, Fact] = {}
    while len(facts) < count:
        story, asked, answer, mentioned = _story(rng)
        question = f"{story} where is {asked} ?"
        if question in facts:
            continue
        statement = f"{story} {asked} is in the {answer} ."
        others = tuple(p for p in PLACES if p != answer and p not in mentioned)
        key = f"story/{stable_hash(question) % 10**12:012d}"
        facts[question] = Fact(key, (statement,), question, answer, (mentioned, others))
    return list(facts.values())
