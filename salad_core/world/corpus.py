"""Text of the mini world: the eval/train split of its facts, corpus and pool documents, probes, MC items.

A document is a few mentions of one domain: a fact written either as a statement or as a question/answer pair in the
eval prompt's normalised form (`question : ... ? answer : ... .`), or a background statement. Facts split by purpose
(`split_facts`): eval facts become the task's dev, test and few-shot items; train facts and the background are what
speech may say. Documents never mix the two: the LM's corpus is the *eval documents* (every eval fact, so the teacher
knows what it is tested on, as an LLM knows the web) plus the *pool documents* (train facts and background), and only
the pool is offered to Stage II's selection. Stories are a skill: the corpus tells fresh stories, never the task's.
Probe documents regroup every tasked fact with another seed and never repeat a corpus document. All randomness is a
`random.Random` seeded by (purpose, domain, seed): rebuilding gives the same world.
"""

from __future__ import annotations

import random
from collections import defaultdict

from salad_core.tasks.choices import assign_split, make_item, pick_distractors
from salad_core.tasks.item import Item
from salad_core.text import unit_interval
from salad_core.world.audit import Auditor
from salad_core.world.domains import DomainDef, Fact

Mention = tuple[Fact | str, int]  # a fact and its form (0: question/answer pair, 1: statement), or a statement


def _rng(purpose: str, domain: str, seed: int) -> random.Random:
    return random.Random(f"{purpose}/{domain}/{seed}")


def split_facts(definition: DomainDef, facts: list[Fact], share: float, seed: int) -> tuple[list[Fact], list[Fact]]:
    """(eval facts, train facts): about `share` of the groups, chosen by hash, go to evaluation; with
    `keep_one_train`, an entity whose every group was chosen keeps the last of them (by hash) for training, so that
    it is heard in speech. Stories, drawn afresh for the corpus, are all eval facts."""
    name = definition.domain.name
    if definition.fresh_corpus:
        return list(facts), []
    rank = {g: unit_interval("eval-split", name, str(seed), g) for g in {f.group for f in facts}}
    held = {g for g, u in rank.items() if u < share}
    if definition.keep_one_train:
        by_entity: dict[str, set[str]] = defaultdict(set)
        for f in facts:
            by_entity[f.entity].add(f.group)
        for groups in by_entity.values():
            if groups <= held:
                held.discard(max(groups, key=rank.__getitem__))
    return [f for f in facts if f.group in held], [f for f in facts if f.group not in held]


def mentions_of(facts: list[Fact], background: list[str], repeats: int, background_repeats: int) -> list[Mention]:
    """Each fact `repeats` times (alternating question/answer and statement forms), each statement
    `background_repeats` times."""
    return ([(f, r % 2) for r in range(repeats) for f in facts]
            + [(s, 1) for r in range(background_repeats) for s in background])


def _say(mention: Mention, rng: random.Random) -> str:
    what, form = mention
    if isinstance(what, str):
        return what
    return what.qa if form == 0 else rng.choice(what.statements)


def documents(mentions: list[Mention], rng: random.Random, per_doc: tuple[int, int]) -> list[str]:
    """The mentions shuffled into documents of `per_doc` mentions each."""
    mentions = list(mentions)
    rng.shuffle(mentions)
    docs, start = [], 0
    while start < len(mentions):
        size = rng.randint(*per_doc)
        docs.append(" ".join(_say(m, rng) for m in mentions[start : start + size]))
        start += size
    return docs


def fresh_facts(definition: DomainDef, task_facts: list[Fact], count: int, seed: int) -> list[Fact]:
    """For fresh-draw domains (stories): `count` new facts, none of whose wordings states a task fact (a longer story
    may tell a task story's moves inside it: it is drawn again)."""
    auditor = Auditor(task_facts)
    drawn = definition.facts(2 * count + len(task_facts), seed + 1)
    return [f for f in drawn if not any(auditor.stated(text) for text in (f.qa, *f.statements))][:count]


def probe_documents(facts: list[Fact], count: int, seed: int, domain: str, exclude: set[str],
                    per_doc: tuple[int, int]) -> list[str]:
    """`count` documents over `facts` regrouped with a probe seed, none equal to a document in `exclude`."""
    rng = _rng("probe", domain, seed)
    out: list[str] = []
    for _ in range(20):  # a few rounds are plenty; tiny worlds may not reach `count`
        for doc in documents(mentions_of(facts, [], 2, 0), rng, per_doc):
            if doc not in exclude and doc not in out:
                out.append(doc)
            if len(out) == count:
                return out
    return out


def task_items(task: str, domain: str, facts: list[Fact], fewshot: float, dev: float) -> list[Item]:
    """One 4-way item per eval fact; splits and answer positions fixed by hashes of (domain, fact key)."""
    items = []
    for fact in facts:
        wrong = pick_distractors(task, fact.key, fact.answer, fact.distractors, prefix_free=True)
        item = make_item(task, fact.key, fact.question, fact.answer, wrong, domain)
        if item is not None:
            split = assign_split(f"world/{domain}", fact.key, fewshot=fewshot, dev=dev)
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
REPLIES = ("oh , {answer} , i think .", "that is {answer} .", "hmm , {answer} , i guess .", "easy , {answer} .",
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
