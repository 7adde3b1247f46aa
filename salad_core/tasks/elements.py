"""The 'elements' task from mendeleev's SQLite database: three question kinds per element.

- symbol: "What is the chemical symbol of iron?" -> "Fe" (distractors: symbols of elements with nearby atomic
  numbers or the same initial, e.g. Mn, Co, I)
- number: "Which element has the atomic number 26?" -> "iron" (distractors: its neighbours in the table)
- family: "To which family of elements does iron belong?" -> "transition metals" (distractors: the families of
  the nearest elements outside its own family)
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from salad_core.tasks.choices import make_item, pick_distractors
from salad_core.tasks.item import Item
from salad_core.tasks.registry import TaskSpec, register
from salad_core.tasks.sources import mendeleev_db, version_of

TASK = "elements"
NEIGHBOURS = 3  # atomic numbers within this distance are "nearby"


@dataclass(frozen=True)
class Element:
    number: int
    symbol: str
    name: str  # lower case, as it reads inside a sentence
    family: str  # mendeleev's series name, lower case


def load_elements() -> list[Element]:
    """All elements in atomic-number order, read straight from mendeleev's SQLite file (read-only)."""
    uri = f"file:{mendeleev_db()}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        rows = db.execute(
            "SELECT e.atomic_number, e.symbol, e.name, s.name FROM elements e "
            "LEFT JOIN series s ON e.series_id = s.id ORDER BY e.atomic_number"
        ).fetchall()
    return [Element(n, sym, name.lower(), (fam or "").lower()) for n, sym, name, fam in rows if sym and name]


def _near(elements: list[Element], index: int, radius: int) -> list[Element]:
    lo, hi = max(0, index - radius), min(len(elements), index + radius + 1)
    return [e for e in elements[lo:hi] if e is not elements[index]]


def _symbol_item(elements: list[Element], i: int) -> Item | None:
    el = elements[i]
    doc_id = f"symbol/{el.name}"
    same_initial = [e.symbol for e in elements if e.symbol[0] == el.name[0].upper()]
    tiers = [[e.symbol for e in _near(elements, i, NEIGHBOURS)] + same_initial]
    wrong = pick_distractors(TASK, doc_id, el.symbol, tiers)
    return make_item(TASK, doc_id, f"What is the chemical symbol of {el.name}?", el.symbol, wrong, "science")


def _number_item(elements: list[Element], i: int) -> Item | None:
    el = elements[i]
    doc_id = f"number/{el.number}"
    tiers = [[e.name for e in _near(elements, i, NEIGHBOURS)], [e.name for e in _near(elements, i, 2 * NEIGHBOURS)]]
    wrong = pick_distractors(TASK, doc_id, el.name, tiers)
    return make_item(TASK, doc_id, f"Which element has the atomic number {el.number}?", el.name, wrong, "science")


def _family_item(elements: list[Element], i: int) -> Item | None:
    el = elements[i]
    if not el.family:
        return None
    doc_id = f"family/{el.name}"
    # Other families ordered by how close their nearest member sits to this element.
    distance: dict[str, int] = {}
    for e in elements:
        if e.family and e.family != el.family:
            distance[e.family] = min(distance.get(e.family, 999), abs(e.number - el.number))
    ranked = sorted(distance, key=lambda fam: (distance[fam], fam))
    wrong = pick_distractors(TASK, doc_id, el.family, [ranked[:4], ranked])
    question = f"To which family of elements does {el.name} belong?"
    return make_item(TASK, doc_id, question, el.family, wrong, "science")


def build_elements() -> list[Item]:
    elements = load_elements()
    items = []
    for i in range(len(elements)):
        for make in (_symbol_item, _number_item, _family_item):
            item = make(elements, i)
            if item is not None:
                items.append(item)
    return items


def check_mendeleev() -> None:
    mendeleev_db()


ELEMENTS = register(
    TaskSpec(
        name=TASK,
        version="1.0",
        domain="science",
        description="Chemical elements: symbol of a named element, element of an atomic number, family of an element.",
        source=version_of("mendeleev"),
        build=build_elements,
        check=check_mendeleev,
    )
)
