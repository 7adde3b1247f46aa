"""The leak audit for the built-in tasks: which broad sentences state a fact that some task item asks about.

Every item of every built-in task counts (dev, test and few-shot alike). An item's fact is its correct option
together with the question's subject: the question's words that are neither stop words nor the task's template
(words in at least TEMPLATE_SHARE of its questions: "capital", "region", "plus", "which word means"). So
"What is the capital of France?" is stated by any sentence saying both "france" and "paris", whatever else it says;
"What is 7 plus 5?" by one saying "seven", "five" and "twelve" (numbers compared as whole numbers). Matching uses the
mini world's auditor (world/audit.py) on the text form both share (lower case, numbers in words, punctuation as
tokens; a possessive "'s" split off, so "Japan's capital is Tokyo" names Japan), so the rule is the same one the mini
world is built under.
"""

from __future__ import annotations

import re
from collections import Counter

from salad_core.tasks import get_task
from salad_core.tasks.item import SPLITS, Item
from salad_core.text import world_form
from salad_core.world.audit import Auditor, audit, tokens

TEMPLATE_SHARE = 0.2
STOP_WORDS = frozenset("a an the of in on at to for by with from and or is are was were be been what which who whom "
                       "whose when where how why does do did has have had this that these those it its ? . , :".split())


def text_form(text: str) -> str:
    """The audit's text form: the world's (`world_form`), with a possessive "'s" a word of its own."""
    return world_form(re.sub(r"(?<=\w)['’]s\b", " s", text))


def item_facts(items: list[Item]) -> list[dict]:
    """One fact record (world/audit.py's `Evidence` fields) per item of one task."""
    questions = [tokens(text_form(item.question)) for item in items]
    share = Counter(t for q in questions for t in set(q))
    template = {t for t, n in share.items() if n >= TEMPLATE_SHARE * len(items)}
    facts = []
    for item, question in zip(items, questions):
        answer = tokens(text_form(item.target))
        subject = [t for t in dict.fromkeys(question) if t not in template and t not in STOP_WORDS]
        facts.append({"key": item.item_id, "subject": subject or [" ".join(answer)], "said": [" ".join(answer)],
                      "cues": [], "scope": "sentence"})
    return facts


def suite_facts(tasks: list[str]) -> dict[str, list[dict]]:
    """Task -> the facts of all its items (every split)."""
    return {task: item_facts([i for split in SPLITS for i in get_task(task).items(split)]) for task in tasks}


class SentenceFilter:
    """Drops the sentences that state any of the facts (`keep`), and tells which facts a text states."""

    def __init__(self, facts: dict[str, list[dict]]):
        self.auditor = Auditor(f for task_facts in facts.values() for f in task_facts)

    def states(self, text: str) -> set[str]:
        return self.auditor.stated(text_form(text))

    def keep(self, sentences: list[str]) -> list[str]:
        return [s for s in sentences if not self.states(s)]


def audit_table(facts: dict[str, list[dict]], sources: dict[str, list[str]]) -> list[dict]:
    """Per task and source, how many of the task's item facts some text of the source states (world/audit.py's
    table, on the audit's text form)."""
    return audit(facts, {name: [text_form(t) for t in texts] for name, texts in sources.items()})
