"""Broad English text for the `smol` preset's training speech, from the offline sources the built-in tasks use.

Sentences by source (each a list of plain sentences; the audit in `broad/audit.py` decides which may be spoken):

    wordnet glosses     "Harbor: a sheltered port where ships can take on or discharge cargo."
    wordnet examples    the usage examples inside glosses: "the kids played in the park"
    freshqa             FreshQA questions that are not task items (changing facts, false premises, yes/no),
                        with their first answer: "Who wrote Hamlet? William Shakespeare."
    arithmetic          operations the task never asks, stated: "17 plus 26 is 43."
    entities            other relations of the entities the tasks ask about, so that their names are heard:
                        "Kyrgyzstan borders China, Kazakhstan, Tajikistan and Uzbekistan.", "Fermium is radioactive.",
                        "The state flower of Alabama is the goldenrod.", "A group of angels is called a host."
                        Never the relation a task asks (capital, region, symbol, atomic number, family, successor,
                        postal code, baby name): the audit drops any sentence that still states an item's fact.

Glosses in the held-out bucket of the broad probe set (`eval.probes.is_broad_probe_text`) are never used.
"""

from __future__ import annotations

import random
import re

from salad_core.eval.probes import is_broad_probe_text

GLOSS_WORDS = (4, 18)  # inclusive bounds on a spoken gloss's length in words
EXAMPLE_WORDS = (4, 16)
MAX_ANSWER_WORDS = 12
_EXAMPLE = re.compile(r'"([^"]+)"')
_SPEAKABLE = re.compile(r"^[A-Za-z0-9 ,.'?:-]+$")


def speakable(sentence: str) -> bool:
    """Plain words, digits and light punctuation only: what every TTS engine reads the same way the text says."""
    return bool(_SPEAKABLE.match(sentence)) and not re.search(r"\d[,.]\d|\d{4,}", sentence)


def _sentence(text: str, end: str = ".") -> str:
    text = " ".join(text.split()).strip(" ,;:")
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else end)


def wordnet_sentences() -> dict[str, list[str]]:
    """{"wordnet glosses": [...], "wordnet examples": [...]} from the noun, verb and adjective synsets."""
    from salad_core.tasks.definitions import POS_FILES, clean_gloss, load_synsets
    from salad_core.tasks.sources import wordnet_dir

    glosses, examples = [], []
    for pos_file in POS_FILES:
        for synset in load_synsets(wordnet_dir(), pos_file).values():
            lemma = synset.words[0][0].replace("_", " ")
            gloss = clean_gloss(synset.gloss)
            sentence = _sentence(f"{lemma}: {gloss}")
            if GLOSS_WORDS[0] <= len(gloss.split()) <= GLOSS_WORDS[1] and not is_broad_probe_text(sentence) \
                    and not is_broad_probe_text(f"{lemma.capitalize()}: {gloss}."):
                glosses.append(sentence)
            for example in _EXAMPLE.findall(synset.gloss):
                if EXAMPLE_WORDS[0] <= len(example.split()) <= EXAMPLE_WORDS[1]:
                    examples.append(_sentence(example))
    return {"wordnet glosses": glosses, "wordnet examples": examples}


def freshqa_sentences() -> list[str]:
    """FreshQA questions the 'freshqa' task does not ask, each followed by its first answer."""
    from salad_core.tasks.freshqa import answer_kind, load_questions, read_records
    from salad_core.tasks.sources import freshqa_csv

    asked = {q.id for q in load_questions(freshqa_csv()) if answer_kind(q)}
    out = []
    for record in read_records(freshqa_csv()):
        question, answer = " ".join(record.get("question", "").split()), record.get("answer_0", "").strip()
        if record.get("id") in asked or not question or not answer or len(answer.split()) > MAX_ANSWER_WORDS:
            continue
        out.append(f"{_sentence(question, '?')} {_sentence(answer)}")
    return out


def arithmetic_sentences(per_operation: int, seed: int = 0) -> list[str]:
    """Up to `per_operation` stated operations per operation ("17 plus 26 is 43."), drawn from the task's operand
    ranges, none of them an item (division has only 121 operand pairs, so it gets fewer)."""
    from salad_core.tasks.arithmetic import OPERATIONS, build_arithmetic

    asked = {item.doc_id for item in build_arithmetic()}
    rng = random.Random(f"broad-arithmetic/{seed}")
    out: list[str] = []
    for op, (result, sample) in OPERATIONS.items():
        pairs = {sample(rng) for _ in range(20 * per_operation)}
        free = sorted(p for p in pairs if f"{op.replace(' ', '-')}/{p[0]}/{p[1]}" not in asked)
        out += [f"{a} {op} {b} is {result(a, b)}." for a, b in rng.sample(free, min(per_operation, len(free)))]
    return out


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _about(count: float, unit: str) -> str:
    """A large figure as it is said, in whole thousands, millions or billions: 5,776,570 -> "about 6 million"."""
    for size, word in ((1e9, "billion"), (1e6, "million"), (1e3, "thousand")):
        if count >= size:
            return f"about {round(count / size):d} {word} {unit}"
    return f"about {round(count):d} {unit}"


def country_sentences() -> list[str]:
    """Neighbours, size and people of every country countryinfo knows (never its capital or region)."""
    from countryinfo import CountryInfo

    from salad_core.tasks.geography import reads_aloud, spoken_name

    data = [d for d in CountryInfo.all().values() if reads_aloud(d.get("name") or "")]
    name_of = {d["ISO"]["alpha3"]: spoken_name(d["name"]) for d in data if isinstance(d.get("ISO"), dict)}
    out = []
    for d in data:
        name = spoken_name(d["name"])
        subject = name[:1].upper() + name[1:]
        neighbours = sorted({name_of[code] for code in d.get("borders") or [] if code in name_of})
        if neighbours:
            out.append(f"{subject} borders {_listed(neighbours)}.")
        if isinstance(d.get("population"), int) and d["population"] > 0:
            out.append(f"{subject} has {_about(d['population'], 'people')}.")
        if str(d.get("area") or "").isdigit() and int(d["area"]) > 0:
            out.append(f"{subject} covers {_about(int(d['area']), 'square kilometres')}.")
        if d.get("demonym"):
            out.append(f"A person from {name} is called {d['demonym']}.")
    return out


def element_sentences() -> list[str]:
    """Place in the table, weight, discovery and name of every element (never its symbol, number or family)."""
    import sqlite3

    from salad_core.tasks.sources import mendeleev_db

    with sqlite3.connect(f"file:{mendeleev_db()}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT name, period, group_id, atomic_weight, is_radioactive, discoverers, name_origin "
                          "FROM elements ORDER BY atomic_number").fetchall()
    out = []
    for name, period, group, weight, radioactive, discoverers, origin in rows:
        where = f"in period {period}" + (f" and group {group}" if group else "")
        out.append(f"{name} is {where} of the periodic table.")
        if weight:
            out.append(f"{name} has an atomic weight of about {round(weight)}.")
        if radioactive:
            out.append(f"{name} is radioactive.")
        if discoverers and discoverers.startswith("Known to the ancients"):
            out.append(f"{name} was known to the ancients.")
        elif discoverers:
            out.append(f"{name} was discovered by {discoverers.rstrip('.')}.")
        if origin:
            out.append(f"{name}: {origin.rstrip('.')}.")
    return out


def quiz_sentences() -> list[str]:
    """From the quiz data files: US state flowers, vice presidents, Canadian provinces' capitals, collective nouns
    (the quiz task asks state capitals, postal codes, presidents' successors and years, baby animals)."""
    from salad_core.tasks.quiz import alternatives, canonical, read_records
    from salad_core.tasks.sources import quiz_dir

    folder, out = quiz_dir(), []
    for record in read_records(folder / "state"):
        if len(record) >= 4 and canonical(record[3]):
            out.append(f"The state flower of {canonical(record[0])} is the {canonical(record[3])}.")
    for record in read_records(folder / "pres"):
        if len(record) >= 3 and alternatives(record[2]):
            out.append(f"{_listed(alternatives(record[2]))} served as vice president under {canonical(record[0])}.")
    for record in read_records(folder / "province"):
        out.append(f"The capital of the Canadian province of {canonical(record[0])} is {canonical(record[1])}.")
    for record in read_records(folder / "collectives"):
        for members in alternatives(record[0]):
            out.append(f"A group of {members} is called a {canonical(record[1])}.")
    return out


def broad_sentences(arithmetic: int, seed: int = 0) -> dict[str, list[str]]:
    """Every source's speakable sentences (source name -> sentences), before the audit."""
    sources = {**wordnet_sentences(), "freshqa": freshqa_sentences(),
               "arithmetic": arithmetic_sentences(arithmetic, seed),
               "entities": country_sentences() + element_sentences() + quiz_sentences()}
    return {name: [s for s in dict.fromkeys(texts) if speakable(s)] for name, texts in sources.items()}
