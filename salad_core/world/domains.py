"""The mini world's domains: what a domain is, what a fact is, and the table of the six domains.

A domain owns tasked facts (real ones from offline data packages, or generated ones), each a question with one
answer, and background statements: other relations of the same entities (a country's region, an element's period),
never asked about. Every string is lower case with punctuation written as separate tokens (`"what is the capital of
peru ?"`, salad_core.text.world_form), so one tokenizer covers the whole world. Which domains the "natural speech"
corpus covers is part of the table (the paper's narrow natural speech against broad web text).

Facts are split by purpose (world/corpus.py, `split_facts`): *eval facts* become the dev, test and few-shot items and
are never stated in anything the speech model trains on; *train facts* and the background may be spoken. A fact's
`group` is the unit of that split (both directions of a capital, a sum and its commuted form, a day shift and its
inverse), its `subject` the words that identify it in a text (world/audit.py finds statements of it by them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

QA_TEMPLATE = "question : {question} answer : {answer} ."  # the eval prompt "Question: q\nAnswer: a", normalised
SCOPES = ("sentence", "document")  # how far a statement of a fact may spread in a text (world/audit.py)


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
    distractors: tuple[tuple[str, ...], ...]  # tiers of wrong answers, most plausible first
    group: str  # facts of one group go to the same side of the eval/train split
    subject: tuple[str, ...]  # phrases that, with the answer, identify the fact in a text
    entity: str = ""  # what the fact is about ("peru", "iron"); "" when the domain has no entities
    scope: str = "sentence"  # a statement of it lies within one sentence (with its reply), or anywhere in a document
    answer_forms: tuple[str, ...] = ()  # other words its statements say the answer with ("no" legs for "none")
    # words of its relation, one of which every wording of the fact uses ("eat", "eats"): "a cod is a fish" states
    # what a cod is, not what it eats
    cues: tuple[str, ...] = ()

    @property
    def said(self) -> tuple[str, ...]:
        """Every phrase that states the answer in the world's texts."""
        return (self.answer, *self.answer_forms)

    @property
    def qa(self) -> str:
        return QA_TEMPLATE.format(question=self.question, answer=self.answer)


@dataclass(frozen=True)
class DomainDef:
    domain: Domain
    facts: Callable[[int, int], list[Fact]]  # (size, seed) -> tasked facts; size caps the entities (0 = all)
    # (size, seed) -> background statements: other relations of the same entities, never asked about
    background: Callable[[int, int], list[str]] | None = None
    # True when every draw is new (stories): the corpus gets its own facts, never the task's.
    fresh_corpus: bool = False
    # True when an entity's other tasked relations are how it is heard: the split keeps one of them a train fact.
    keep_one_train: bool = False


def _table() -> dict[str, DomainDef]:
    from salad_core.world import facts, skills

    def d(name: str, kind: str, speech: bool, description: str, make, **options) -> DomainDef:
        return DomainDef(Domain(name, f"mini-{name}", kind, speech, description), make, **options)

    return {
        "capitals": d("capitals", "fact", True, "country -> capital and capital -> country (countryinfo); background: "
                      "each country's region and its capital's", facts.capital_facts,
                      background=facts.capital_background),
        "elements": d("elements", "fact", False, "element -> symbol (spelled), atomic number and family (mendeleev); "
                      "background: each element's period", facts.element_facts, background=facts.element_background,
                      keep_one_train=True),
        "animals": d("animals", "fact", True, "animal -> class, habitat, number of legs and food (curated list)",
                     facts.animal_facts, keep_one_train=True),
        "arithmetic": d("arithmetic", "skill", True, "sums and products written with number words",
                        skills.arithmetic_facts),
        "calendar": d("calendar", "skill", False, "days and months before and after one another",
                      skills.calendar_facts),
        "stories": d("stories", "skill", False, "bAbI-style stories: where is a person after two or three moves",
                     skills.story_facts, fresh_corpus=True),
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
                                    dom.description), entry.facts, entry.background, entry.fresh_corpus,
                             entry.keep_one_train))
    return out
