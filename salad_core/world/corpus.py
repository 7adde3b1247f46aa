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

from salad_core.tasks.choices import assign_split, make_item, pick_distractors
from salad_core.tasks.item import Item
from salad_core.world.domains import DomainDef, Fact

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
# The natural speech's register
#
# The paper's natural speech (audiobooks, conversation) is not written like the web text its LLM learned from, so
# next-token training on its transcripts pulls the LLM toward a new register and what it knew drifts with it, while
# distillation's target, the teacher's distribution, stays put. With transcripts worded exactly as its corpus, the
# mini LM had nothing new to learn from them and plain NLL forgot no text skill. So the mini world's natural speech
# says its facts in a conversational register that the LM never reads in pretraining.

OPENERS = ("so ,", "well ,", "um ,", "okay so", "and", "you know ,", "oh and", "uh ,", "right , so", "alright ,")
TAGS = (", right", ", i think", ", you know", ", if i remember right", ", i am pretty sure", ", yeah", "")
ASIDES = ("that is interesting .", "let me think .", "oh yes .", "wait , hold on .", "i did not know that .", "okay .",
          "my friend told me that once .", "ha , that is a good one .", "hmm , let me see .",
          "yeah , i remember now .", "you are right about that .", "sure , go on .")
ASKS = ("hey , {question}", "do you know , {question}", "so tell me , {question}", "um , {question}",
        "quick one , {question}")
REPLIES = ("oh , {answer} , i think .", "that is {answer} .", "hmm , {answer} , right ?", "easy , {answer} .",
           "it is {answer} , yeah .")
REGISTERS = ("written", "conversational")  # "written": the corpus's own wording


def mentions(doc: str) -> list[str]:
    """A document's statements and question/answer pairs, each ending in its " ."."""
    out, current = [], []
    for token in doc.split():
        current.append(token)
        if token == ".":
            out.append(" ".join(current))
            current = []
    return out + ([" ".join(current)] if current else [])


def conversational(doc: str, rng: random.Random, aside_prob: float = 0.4) -> str:
    """`doc` as a person would say it: a statement gets an opener and a tag, a question/answer pair becomes an
    exchange, and asides fall in between. Every fact keeps its own words."""
    said = []
    for mention in mentions(doc):
        body = mention.removesuffix(" .")
        if body.startswith("question : ") and " answer : " in body:
            question, answer = body.removeprefix("question : ").rsplit(" answer : ", 1)
            said += [rng.choice(ASKS).format(question=question), rng.choice(REPLIES).format(answer=answer)]
        else:
            said.append(" ".join(filter(None, (rng.choice(OPENERS), body, rng.choice(TAGS), "."))))
        if rng.random() < aside_prob:
            said.append(rng.choice(ASIDES))
    return " ".join(said)


def in_register(doc: str, register: str, rng: random.Random) -> str:
    if register not in REGISTERS:
        raise ValueError(f"Unknown speech register {register!r}. Fix: use one of {', '.join(REGISTERS)}.")
    return conversational(doc, rng) if register == "conversational" else doc
