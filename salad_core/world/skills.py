"""The mini world's generated domains: arithmetic in number words, calendar order, and bAbI-style stories.

Arithmetic and calendar facts are finite tables (every sum of two small numbers, every day n days after another);
their eval/train split runs over operand combinations, with the forms that state the same fact in one group (a sum
and its commuted sum; "two days after monday is wednesday" and every other shift between monday and wednesday).
Stories are drawn fresh from a seeded generator, so a test story is never in the corpus and answering it is a skill
(tracking who went where), not a memorised fact.
"""

from __future__ import annotations

import random

from salad_core.text import number_words, stable_hash
from salad_core.world.domains import Fact

SUM_MAX = 15  # a + b with 0 <= a, b <= SUM_MAX
PRODUCT_RANGE = range(2, 13)  # a * b with a, b in 2..12


def _cap(facts: list[Fact], size: int, seed: int) -> list[Fact]:
    """A fixed, hash-chosen subset of the facts of `size` groups (all when size is 0), in the original order."""
    groups = sorted({f.group for f in facts})
    if size <= 0 or size >= len(groups):
        return facts
    keep = set(sorted(groups, key=lambda g: stable_hash(str(seed), "subset", g))[:size])
    return [f for f in facts if f.group in keep]


def _near_words(value: int, offsets: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(number_words(value + d) for d in offsets if value + d >= 0)


def _operation(a: int, op: str, b: int, result: int, near: tuple[int, ...]) -> Fact:
    aw, bw, rw = number_words(a), number_words(b), number_words(result)
    group = f"{op}/{min(a, b)}/{max(a, b)}"  # a + b and b + a state one fact
    return Fact(f"{op}/{a}/{b}", (f"{aw} {op} {bw} is {rw} .",), f"what is {aw} {op} {bw} ?", rw,
                (_near_words(result, near), _near_words(result, (3, -3, 4, -4, 5))), group, (f"{aw} {op} {bw}",))


def arithmetic_facts(size: int, seed: int) -> list[Fact]:
    """Every sum of two numbers up to SUM_MAX and every product in PRODUCT_RANGE; `size` caps the groups."""
    facts = [_operation(a, "plus", b, a + b, (1, -1, 2, -2, 10))
             for a in range(SUM_MAX + 1) for b in range(SUM_MAX + 1)]
    facts += [_operation(a, "times", b, a * b, (a, -a, b, -b, 1, -1))
              for a in PRODUCT_RANGE for b in PRODUCT_RANGE]
    return _cap(facts, size, seed)


DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")


def _shift_phrase(unit: str, steps: int, direction: str) -> str:
    """ "day after", "two months before" (what follows "the" for one step) """
    return f"{unit} {direction}" if steps == 1 else f"{number_words(steps)} {unit}s {direction}"


def _cycle_facts(unit: str, names: tuple[str, ...]) -> list[Fact]:
    """Every shift of 1 .. len(names) - 1 steps after and before each name: one group per pair of names, since any
    shift between two names (and its inverse) states how far apart they are."""
    facts = []
    for i, name in enumerate(names):
        for n in range(1, len(names)):
            for direction, sign in (("after", 1), ("before", -1)):
                target = names[(i + sign * n) % len(names)]
                near = tuple(names[(i + sign * k) % len(names)] for k in range(1, len(names)) if k != n)
                phrase = _shift_phrase(unit, n, direction)
                said = f"the {phrase}" if n == 1 else phrase
                facts.append(Fact(f"{unit}/{name}/{direction}/{n}", (f"{said} {name} is {target} .",),
                                  f"what is {said} {name} ?", target, (near,),
                                  f"{unit}/{'/'.join(sorted((name, target)))}", (phrase, name)))
    return facts


def calendar_facts(size: int, seed: int) -> list[Fact]:
    """Days 1-6 and months 1-11 after and before each other; `size` caps the groups (pairs of names)."""
    return _cap(_cycle_facts("day", DAYS) + _cycle_facts("month", MONTHS), size, seed)


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
    """`size` distinct stories (DEFAULT_STORIES when 0) from a generator seeded by `seed`. A story is its own group;
    it is stated where its moves are told in order, anywhere in a document."""
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
        facts[question] = Fact(key, (statement,), question, answer, (mentioned, others), key, (story,),
                               scope="document")
    return list(facts.values())
