"""The 'definitions' task from WordNet 3 (Debian wordnet-base): "Which word means: <gloss>?" -> the word.

Only frequent words: the sense asked about must be the word's most frequent sense and have been tagged at least
MIN_TAG_COUNT times in the SemCor concordance (WordNet's cntlist.rev). The gloss is its first definition, without
examples or parenthetical remarks, and must not contain the word itself. Distractors are other frequent words of
the same part of speech and lexicographer file (animals for an animal, body parts for a body part), minus any
word with a sense next to the target sense in WordNet (synonyms, hypernyms, hyponyms, siblings, similar
adjectives) that might also fit the gloss.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from salad_core.tasks.choices import make_item, pick_distractors
from salad_core.tasks.item import Item
from salad_core.tasks.registry import TaskSpec, register
from salad_core.tasks.sources import wordnet_dir

TASK = "definitions"
MIN_TAG_COUNT = 20
GLOSS_WORDS = (3, 14)  # inclusive bounds on the gloss length in words
POS_FILES = {"noun": "n", "verb": "v", "adj": "a"}  # adjective satellites ("s") are not used
SS_TYPE_NUMBER = {"n": 1, "v": 2, "a": 3, "s": 5}
ANTONYM = "!"


@dataclass(frozen=True)
class Synset:
    offset: str
    pos: str  # "n" | "v" | "a" | "s" (adjective satellite)
    lexfile: int
    words: tuple[tuple[str, int], ...]  # (lemma as written, lex_id)
    pointers: tuple[tuple[str, str], ...]  # (symbol, target offset), same part of speech only
    gloss: str


def parse_data_line(line: str, pos: str) -> Synset | None:
    """One line of a WordNet data.* file (format: wndb(5WN)); None for the licence lines at the top.

    Adjective satellites (type "s") are kept, with pos "s": they are never asked about (their sense keys need
    the head word), but they tell which adjectives are too similar to serve as distractors.
    """
    if line.startswith("  ") or " | " not in line:
        return None
    head, gloss = line.split(" | ", 1)
    fields = head.split()
    kinds = {pos, "s"} if pos == "a" else {pos}
    if fields[2] not in kinds:
        return None
    n_words = int(fields[3], 16)
    words = tuple((re.sub(r"\(.*\)$", "", fields[4 + 2 * i]), int(fields[5 + 2 * i], 16)) for i in range(n_words))
    at = 4 + 2 * n_words
    pointers = []
    for p in range(int(fields[at])):
        symbol, target, target_pos = fields[at + 1 + 4 * p : at + 4 + 4 * p]
        if target_pos in kinds:
            pointers.append((symbol, target))
    return Synset(fields[0], fields[2], int(fields[1]), words, tuple(pointers), gloss.strip())


def load_synsets(folder: Path, pos_file: str) -> dict[str, Synset]:
    pos = POS_FILES[pos_file]
    synsets = {}
    with open(folder / f"data.{pos_file}", encoding="utf-8") as f:
        for line in f:
            synset = parse_data_line(line, pos)
            if synset is not None:
                synsets[synset.offset] = synset
    return synsets


def load_tag_counts(folder: Path) -> dict[str, tuple[int, int]]:
    """sense key -> (sense number, SemCor tag count)."""
    counts = {}
    for line in (folder / "cntlist.rev").read_text(encoding="utf-8").splitlines():
        key, sense, count = line.split()
        counts[key] = (int(sense), int(count))
    return counts


def sense_key(lemma: str, synset: Synset, lex_id: int) -> str:
    return f"{lemma.lower()}%{SS_TYPE_NUMBER[synset.pos]}:{synset.lexfile:02d}:{lex_id:02d}::"


def clean_gloss(gloss: str) -> str:
    """First definition of a gloss: no examples, no parenthetical remarks, no quote marks."""
    text = gloss.split(";")[0]
    text = re.sub(r"\([^)]*\)", "", text)
    text = re.sub(r"[\"`']+(?=\s|$)|(?<=\s)[\"`']+", "", text)
    return " ".join(text.split()).strip(" ,.:")


def gloss_ok(lemma: str, gloss: str) -> bool:
    tokens = re.findall(r"[a-z]+", gloss.lower())
    if not GLOSS_WORDS[0] <= len(tokens) <= GLOSS_WORDS[1]:
        return False
    stem = lemma[: max(4, len(lemma) - 2)]
    return not any(t.startswith(stem) or (len(t) >= 4 and lemma.startswith(t)) for t in tokens)


def _related(synset: Synset, synsets: dict[str, Synset]) -> set[str]:
    """The target sense and every sense one step away from it, plus its siblings under a shared hypernym."""
    near = {synset.offset} | {t for sym, t in synset.pointers if sym != ANTONYM}
    for sym, parent in synset.pointers:
        if sym.startswith("@") and parent in synsets:
            near |= {t for s, t in synsets[parent].pointers if s.startswith("~")}
    return near


def _question(synset: Synset, gloss: str) -> str:
    meaning = f"to {gloss}" if synset.pos == "v" and not gloss.startswith("to ") else gloss
    return f"Which word means: {meaning}?"


def _candidates(synsets: dict[str, Synset], counts: dict[str, tuple[int, int]]) -> list[tuple[str, Synset, str]]:
    """(word, synset, gloss) for frequent words whose most frequent sense is this synset, first lemma only."""
    found = []
    for synset in synsets.values():
        if synset.pos == "s":
            continue
        lemma, lex_id = synset.words[0]
        sense, count = counts.get(sense_key(lemma, synset, lex_id), (0, 0))
        if sense != 1 or count < MIN_TAG_COUNT or not re.fullmatch(r"[a-z]+", lemma):
            continue
        gloss = clean_gloss(synset.gloss)
        if gloss_ok(lemma, gloss):
            found.append((lemma, synset, gloss))
    return found


def _build_pos(folder: Path, pos_file: str, counts: dict[str, tuple[int, int]]) -> list[Item]:
    synsets = load_synsets(folder, pos_file)
    candidates = _candidates(synsets, counts)
    by_lexfile: dict[int, list[str]] = defaultdict(list)
    for word, synset, _ in candidates:
        by_lexfile[synset.lexfile].append(word)
    every = [word for word, _, _ in candidates]
    items = []
    for word, synset, gloss in candidates:
        # Every lemma of a nearby sense might fit the gloss; so might a word used in the gloss itself
        # ("produce a literary work").
        nearby = (synsets[offset] for offset in _related(synset, synsets) if offset in synsets)
        confusable = {lemma.lower() for s in nearby for lemma, _ in s.words} | set(re.findall(r"[a-z]+", gloss.lower()))
        doc_id = f"{pos_file}/{word}"
        wrong = pick_distractors(TASK, doc_id, word, [by_lexfile[synset.lexfile], every], exclude=confusable)
        item = make_item(TASK, doc_id, _question(synset, gloss), word, wrong, "language")
        if item is not None:
            items.append(item)
    return items


def build_definitions() -> list[Item]:
    folder = wordnet_dir()
    counts = load_tag_counts(folder)
    return [item for pos_file in POS_FILES for item in _build_pos(folder, pos_file, counts)]


def check_wordnet() -> None:
    wordnet_dir()


DEFINITIONS = register(
    TaskSpec(
        name=TASK,
        version="1.0",
        domain="language",
        description="Pick the frequent English word (noun, verb or adjective) that a WordNet definition describes.",
        source="Debian wordnet-base (WordNet 3, with SemCor sense counts)",
        build=build_definitions,
        check=check_wordnet,
    )
)
