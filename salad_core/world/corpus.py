"""Text of the mini world: corpus documents, held-out probe documents, MC items, and speech/text span plans.

A document is a few facts of one domain, each written either as a statement or as a question/answer pair in the
eval prompt's normalised form (`question : ... ? answer : ... .`), so the LM meets both the facts and the format
it is tested in. Every fact of a task appears in the corpus `repeats` times (stories excepted: their corpus draws
fresh stories, so test stories stay unseen). Probe documents regroup the facts with another seed and never repeat a
corpus document. All randomness is a `random.Random` seeded by (purpose, domain, seed): rebuilding gives the same
world.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from salad_core.tasks.choices import assign_split, make_item, pick_distractors
from salad_core.tasks.item import Item
from salad_core.world.domains import DomainDef, Fact

PUNCT = {".", ",", "?", ":"}


def _rng(purpose: str, domain: str, seed: int) -> random.Random:
    return random.Random(f"{purpose}/{domain}/{seed}")


def _mention(fact: Fact, form: int, rng: random.Random) -> str:
    """Form 0 is the question/answer pair, any other a statement."""
    return fact.qa if form == 0 else rng.choice(fact.statements)


def documents(facts: list[Fact], rng: random.Random, repeats: int, per_doc: tuple[int, int]) -> list[str]:
    """Each fact mentioned `repeats` times (alternating QA and statement forms), shuffled into documents."""
    mentions = [(fact, r % 2) for r in range(repeats) for fact in facts]
    rng.shuffle(mentions)
    docs, start = [], 0
    while start < len(mentions):
        size = rng.randint(*per_doc)
        docs.append(" ".join(_mention(f, form, rng) for f, form in mentions[start : start + size]))
        start += size
    return docs


def corpus_facts(definition: DomainDef, task_facts: list[Fact], count: int, seed: int) -> list[Fact]:
    """The facts the text corpus states: the task's own, or for fresh-draw domains new ones disjoint from them."""
    if not definition.fresh_corpus:
        return task_facts
    taken = {f.question for f in task_facts}
    drawn = definition.facts(count + len(task_facts), seed + 1)
    return [f for f in drawn if f.question not in taken][:count]


def probe_documents(facts: list[Fact], count: int, seed: int, domain: str, exclude: set[str],
                    per_doc: tuple[int, int]) -> list[str]:
    """`count` documents over `facts` regrouped with a probe seed, none equal to a document in `exclude`."""
    rng = _rng("probe", domain, seed)
    out: list[str] = []
    for _ in range(20):  # a few rounds are plenty; tiny worlds may not reach `count`
        for doc in documents(facts, rng, 2, per_doc):
            if doc not in exclude and doc not in out:
                out.append(doc)
            if len(out) == count:
                return out
    return out


def task_items(task: str, domain: str, facts: list[Fact], fewshot: float) -> list[Item]:
    """One 4-way item per fact; splits and answer positions fixed by hashes of (domain, fact key)."""
    items = []
    for fact in facts:
        wrong = pick_distractors(task, fact.key, fact.answer, fact.distractors, prefix_free=True)
        item = make_item(task, fact.key, fact.question, fact.answer, wrong, domain)
        if item is not None:
            split = assign_split(f"world/{domain}", fact.key, fewshot=fewshot)
            items.append(Item(item.task, item.doc_id, split, item.question, item.choices, item.answer, domain))
    return items


# ---------------------------------------------------------------------------------------------------------------
# Speech/text span plans


@dataclass(frozen=True)
class SpanPlan:
    text: str
    spoken: bool


def units(doc: str) -> list[str]:
    """A document's words, each with the punctuation tokens that follow it ("peru ?", "question :")."""
    out: list[str] = []
    for token in doc.split():
        if token in PUNCT and out:
            out[-1] += " " + token
        else:
            out.append(token)
    return out


def split_spans(doc: str, rng: random.Random, speech_words: tuple[int, int], text_words: tuple[int, int],
                all_spoken: bool = False) -> list[SpanPlan]:
    """Alternating text and speech spans of random word lengths (the first one's modality random too)."""
    parts = units(doc)
    if all_spoken:
        return [SpanPlan(" ".join(parts), True)]
    spans, start, spoken = [], 0, rng.random() < 0.5
    while start < len(parts):
        size = rng.randint(*(speech_words if spoken else text_words))
        spans.append(SpanPlan(" ".join(parts[start : start + size]), spoken))
        start += size
        spoken = not spoken
    return spans


def speakable_text(span: str) -> str:
    """What the TTS engine reads for a span: the colons of "question :" / "answer :" are not spoken."""
    return " ".join(t for t in span.split() if t != ":")
