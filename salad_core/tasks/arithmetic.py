"""The 'arithmetic' task: generated, seeded questions such as "What is 7 plus 5?" -> "12".

Operands come from one `random.Random(SEED)` stream per operation, drawn in a fixed order and de-duplicated, so
raising PER_OPERATION appends items without changing the existing ones. Distractors are numbers near the true
result, the slips people (and models) actually make: off by one or two, off by ten, or a neighbouring row of
the times table.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from salad_core.tasks.choices import make_item, near_numbers, pick_distractors
from salad_core.tasks.item import Item
from salad_core.tasks.registry import TaskSpec, register

TASK = "arithmetic"
SEED = 2510  # arXiv 2510.13632
PER_OPERATION = 80


def _sum_operands(rng: random.Random) -> tuple[int, int]:
    return rng.randint(2, 99), rng.randint(2, 99)


def _difference_operands(rng: random.Random) -> tuple[int, int]:
    a = rng.randint(3, 99)
    return a, rng.randint(2, a - 1)


def _product_operands(rng: random.Random) -> tuple[int, int]:
    return rng.randint(2, 12), rng.randint(2, 19)


def _quotient_operands(rng: random.Random) -> tuple[int, int]:
    divisor, quotient = rng.randint(2, 12), rng.randint(2, 12)
    return divisor * quotient, divisor


# word -> (result, operand sampler)
OPERATIONS: dict[str, tuple[Callable[[int, int], int], Callable[[random.Random], tuple[int, int]]]] = {
    "plus": (lambda a, b: a + b, _sum_operands),
    "minus": (lambda a, b: a - b, _difference_operands),
    "times": (lambda a, b: a * b, _product_operands),
    "divided by": (lambda a, b: a // b, _quotient_operands),
}


def _distractor_tiers(a: int, op: str, b: int, result: int) -> list[list[int]]:
    if op == "times":
        return [[(a - 1) * b, (a + 1) * b, a * (b - 1), a * (b + 1)], near_numbers(result, (-1, 1, -2, 2))]
    if op == "divided by":
        return [near_numbers(result, (-1, 1, -2, 2)), near_numbers(result, (3, -3, 4))]
    return [near_numbers(result, (-1, 1, -2, 2, -10, 10)), near_numbers(result, (3, -3, 11, -11))]


def arithmetic_item(a: int, op: str, b: int) -> Item | None:
    """The item for "What is <a> <op> <b>?"; `op` is one of OPERATIONS."""
    if op not in OPERATIONS:
        raise ValueError(f"Unknown operation {op!r}. Fix: use one of {', '.join(OPERATIONS)}")
    result = OPERATIONS[op][0](a, b)
    doc_id = f"{op.replace(' ', '-')}/{a}/{b}"
    tiers = [[str(n) for n in tier if n >= 0] for tier in _distractor_tiers(a, op, b, result)]
    wrong = pick_distractors(TASK, doc_id, str(result), tiers)
    return make_item(TASK, doc_id, f"What is {a} {op} {b}?", str(result), wrong, "math")


def _operands(op: str, count: int) -> list[tuple[int, int]]:
    rng = random.Random(f"{SEED}/{op}")
    sample = OPERATIONS[op][1]
    seen: list[tuple[int, int]] = []
    while len(seen) < count:
        pair = sample(rng)
        if pair not in seen:
            seen.append(pair)
    return seen


def build_arithmetic() -> list[Item]:
    items = []
    for op in OPERATIONS:
        for a, b in _operands(op, PER_OPERATION):
            item = arithmetic_item(a, op, b)
            if item is not None:
                items.append(item)
    return items


ARITHMETIC = register(
    TaskSpec(
        name=TASK,
        version="1.0",
        domain="math",
        description="Two-number arithmetic in words (plus, minus, times, divided by) with near-miss distractors.",
        source=f"generated (seed {SEED})",
        build=build_arithmetic,
    )
)
