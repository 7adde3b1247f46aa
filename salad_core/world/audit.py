"""The leak audit: does any text a speech model trains on state an evaluation fact, in any wording?

A text states a fact when the fact's answer, every phrase of its subject (world/domains.py: the country, the animal,
the operands, the shift and its anchor, a whole story) and a word of its relation ("eat" or "eats": "a cod is a fish"
says what a cod is, not what it eats) occur in one window of it: a sentence, joined with
the sentence after it when it ends in "?" (a question and its reply), or the whole text for facts whose statements
span sentences (stories). Number words are compared as whole numbers ("two" does not occur in "twenty two").
Matching is on the world's text form (lower case, punctuation as tokens), whatever the register: the natural
speech's conversational wording ("quick one , what is the capital of peru ? that is lima .") states a fact as much
as the corpus's ("the capital of peru is lima .").

The world build refuses to finish when any source leaks (`check`), and `salad world audit` prints the table.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from salad_core.errors import SaladError
from salad_core.text import number_words
from salad_core.world.domains import Fact

_NUMBER_WORDS = frozenset(w for n in range(1000) for w in number_words(n).split())


def tokens(text: str) -> tuple[str, ...]:
    """The text's tokens, each maximal run of number words joined into one ("twenty two" -> "twenty_two")."""
    out: list[str] = []
    for token in text.split():
        if token in _NUMBER_WORDS and out and out[-1].split("_")[-1] in _NUMBER_WORDS:
            out[-1] += "_" + token
        else:
            out.append(token)
    return tuple(out)


def windows(text: str, scope: str) -> list[tuple[str, ...]]:
    """The windows a statement must fit in: sentences (a question joined with its reply), or the whole text."""
    toks = tokens(text)
    if scope == "document":
        return [toks]
    sentences, current = [], []
    for token in toks:
        current.append(token)
        if token in (".", "?"):
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    out = []
    for i, sentence in enumerate(sentences):
        joined = sentence + (sentences[i + 1] if sentence[-1] == "?" and i + 1 < len(sentences) else [])
        out.append(tuple(joined))
    return out


def _contains(window: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(window[i:i + n] == phrase for i in range(len(window) - n + 1))


@dataclass(frozen=True)
class Evidence:
    """What identifies one fact in a text: phrases that must all occur, and phrases one of which must."""

    fact: str
    subject: tuple[tuple[str, ...], ...]
    answers: tuple[tuple[str, ...], ...]
    cues: tuple[tuple[str, ...], ...]
    scope: str

    @classmethod
    def of(cls, fact: Fact | dict) -> Evidence:
        """From a `Fact`, or from its record in a world's facts.jsonl."""
        get = fact.get if isinstance(fact, dict) else lambda k: getattr(fact, k)
        return cls(get("key"), tuple(tokens(p) for p in get("subject")), tuple(tokens(a) for a in get("said")),
                   tuple(tokens(c) for c in get("cues")), get("scope"))

    def stated_in(self, window: tuple[str, ...]) -> bool:
        return (all(_contains(window, p) for p in self.subject) and any(_contains(window, a) for a in self.answers)
                and (not self.cues or any(_contains(window, c) for c in self.cues)))


class Auditor:
    """Finds statements of a set of facts in texts; an index by each fact's rarest subject token keeps it fast."""

    def __init__(self, facts: Iterable[Fact | dict]):
        self.evidence = [Evidence.of(f) for f in facts]
        counts = Counter(p[0] for e in self.evidence for p in e.subject)
        self.by_token: dict[str, list[Evidence]] = defaultdict(list)
        for e in self.evidence:  # a window must hold every subject phrase: index each fact by its rarest first token
            self.by_token[min((p[0] for p in e.subject), key=counts.__getitem__)].append(e)

    def stated(self, text: str) -> set[str]:
        """Keys of the facts the text states."""
        found = set()
        for scope in ("sentence", "document"):
            for window in windows(text, scope):
                for token in set(window):
                    for e in self.by_token.get(token, ()):
                        if e.scope == scope and e.fact not in found and e.stated_in(window):
                            found.add(e.fact)
        return found


def audit(eval_facts: dict[str, list[Fact | dict]], sources: dict[str, list[str]]) -> list[dict]:
    """Per task and source: how many of the task's eval facts some text of the source states.

    `eval_facts`: task -> its eval facts (`Fact`s or their facts.jsonl records); `sources`: source name -> texts. Rows {task, source, eval_facts, leaked,
    examples} (examples: up to 3 keys of leaked facts)."""
    task_of = {Evidence.of(f).fact: task for task, facts in eval_facts.items() for f in facts}
    auditor = Auditor(f for facts in eval_facts.values() for f in facts)
    rows = []
    for source, texts in sources.items():
        leaked: dict[str, set[str]] = defaultdict(set)
        for text in texts:
            for key in auditor.stated(text):
                leaked[task_of[key]].add(key)
        for task, facts in eval_facts.items():
            rows.append({"task": task, "source": source, "eval_facts": len(facts), "leaked": len(leaked[task]),
                         "examples": sorted(leaked[task])[:3]})
    return rows


class LeakError(SaladError, RuntimeError):
    """A training source states evaluation facts; the message holds the audit table."""


def format_table(rows: list[dict]) -> str:
    sources = list(dict.fromkeys(r["source"] for r in rows))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    cell = {(r["task"], r["source"]): r for r in rows}
    lines = [f"{'task':<20}{'eval facts':>11}" + "".join(f"{s:>22}" for s in sources)]
    for task in tasks:
        n = cell[(task, sources[0])]["eval_facts"] if sources else 0
        lines.append(f"{task:<20}{n:>11}" + "".join(f"{cell[(task, s)]['leaked']:>22}" for s in sources))
    return "\n".join(lines)


def check(rows: list[dict]) -> None:
    """Raise a LeakError (with the table and examples) when any source states any eval fact."""
    leaks = [r for r in rows if r["leaked"]]
    if leaks:
        examples = "; ".join(f"{r['task']} in {r['source']}: {', '.join(r['examples'])}" for r in leaks)
        raise LeakError("Evaluation facts are stated in training sources (leaked eval facts per task and source):\n"
                        f"{format_table(rows)}\nExamples: {examples}. Fix: the world's generators must keep eval facts "
                        "out of every speech source and the selection pool (world/corpus.py).")
