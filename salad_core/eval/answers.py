"""Generative scoring: a free answer matched to one of the item's options, or recorded as a parse failure.

The prompt lists the options as lettered lines ("A. Paris") and the model answers after "Answer:". The rules, in
order (the first that decides, decides):
1. a letter: the answer is an option's letter alone, or its letter followed by ")", "." or ":" ("B", "(B)",
   "B. Paris", "B: Paris"); letters past the last option do not count;
2. an option's text: after lower-casing and keeping only letters, digits and single spaces, exactly one option's
   text appears in the answer as whole words ("It is Paris." -> Paris). When several do, the longest wins if it
   contains every other ("New South Wales" over "Wales"); otherwise the answer is ambiguous;
3. else the match fails: the item counts as wrong and `parse_fail` is set, so an unparsable answer is reported
   as such rather than silently counted as a wrong guess.
"""

from __future__ import annotations

import re

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # the options' labels in a generative prompt (eval/lanes.py)
_LETTER = re.compile(r"^\(?([A-Z])(?:\)|\.|:|\s*$)")
_LEADING = re.compile(r"^(?:the\s+)?(?:correct\s+)?answer\s*(?:is)?\s*[:\-]?\s*", re.IGNORECASE)


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def match_answer(answer: str, choices: tuple[str, ...] | list[str]) -> int | None:
    """The index of the option `answer` names, or None when it names none (or several) of them."""
    text = _LEADING.sub("", answer.strip())
    letter = _LETTER.match(text)
    if letter and LETTERS.index(letter.group(1)) < len(choices):
        return LETTERS.index(letter.group(1))
    said = f" {normalise(text)} "
    named = [j for j, c in enumerate(choices) if normalise(c) and f" {normalise(c)} " in said]
    if len(named) == 1:
        return named[0]
    if named:
        longest = max(named, key=lambda j: len(normalise(choices[j])))
        if all(f" {normalise(choices[j])} " in f" {normalise(choices[longest])} " for j in named):
            return longest
    return None
