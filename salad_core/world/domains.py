"""The mini world's domains: what a domain is, what a fact is, and the table of the six domains.

A domain owns a set of facts (real ones from offline data packages, or generated ones) and turns them into text:
statements for the corpus and question/answer pairs for its multiple-choice task. Every string is lower case with
punctuation written as separate tokens (`"what is the capital of peru ?"`), so one word-level tokenizer covers the
whole world. Which domains the "natural speech" corpus covers is part of the table (the paper's narrow natural
speech against broad web text, docs/salad-method.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

QA_TEMPLATE = "question : {question} answer : {answer} ."  # the eval prompt "Question: q\nAnswer: a", normalised


@dataclass(frozen=True)
class Domain:
    name: str  # "capitals"
    task: str  # registered task name, "mini-capitals"
    kind: str  # "fact" (memorised facts) | "skill" (a procedure over the prompt)
    in_natural_speech: bool  # whether the natural-speech training corpus covers this domain
    description: str


@dataclass(frozen=True)
class Fact:
    """One thing the world knows, with the text forms the corpus and the task need."""

    key: str  # stable id inside the domain, e.g. "capital/peru"
    statements: tuple[str, ...]  # declarative forms, each ending in " ."
    question: str  # ends in " ?"
    answer: str
    distractors: tuple[str, ...]  # wrong answers, most plausible first (at least 3)

    @property
    def qa(self) -> str:
        return QA_TEMPLATE.format(question=self.question, answer=self.answer)


@dataclass(frozen=True)
class DomainDef:
    domain: Domain
    facts: Callable[[int, int], list[Fact]]  # (size, seed) -> facts; size caps the count (0 = all)
    # True when every draw is new (stories): the corpus then gets its own facts, never the task's.
    fresh_corpus: bool = False


def words(text: str) -> list[str]:
    return text.split()


def _table() -> dict[str, DomainDef]:
    from salad_core.world import facts, skills

    def d(name: str, kind: str, speech: bool, description: str, make: Callable[[int, int], list[Fact]],
          fresh: bool = False) -> DomainDef:
        return DomainDef(Domain(name, f"mini-{name}", kind, speech, description), make, fresh)

    return {
        "capitals": d("capitals", "fact", True, "country -> capital and capital -> country (countryinfo)",
                      facts.capital_facts),
        "elements": d("elements", "fact", False, "element -> symbol (spelled) and atomic number (mendeleev)",
                      facts.element_facts),
        "animals": d("animals", "fact", True, "animal -> class, habitat and number of legs (curated list)",
                     facts.animal_facts),
        "arithmetic": d("arithmetic", "skill", True, "sums and products written with number words",
                        skills.arithmetic_facts),
        "calendar": d("calendar", "skill", False, "days and months before and after one another",
                      skills.calendar_facts),
        "stories": d("stories", "skill", False, "bAbI-style stories: where is a person after two or three moves",
                     skills.story_facts, fresh=True),
    }


DOMAIN_NAMES = ("capitals", "elements", "animals", "arithmetic", "calendar", "stories")


def domain_defs(preset: str) -> list[DomainDef]:
    """The six domain definitions, with task names prefixed by the preset (`mini-capitals`, `nano-capitals`)."""
    table = _table()
    out = []
    for name in DOMAIN_NAMES:
        entry = table[name]
        dom = entry.domain
        out.append(DomainDef(Domain(dom.name, f"{preset}-{dom.name}", dom.kind, dom.in_natural_speech,
                                    dom.description), entry.facts, entry.fresh_corpus))
    return out
