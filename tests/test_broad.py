"""The broad speech corpus of the smol preset: its sources, the leak audit against the built-in tasks, its documents,
and a small corpus built by the real pipeline (TTS, trimming, Whisper-base frames) read back through BroadSpeech."""

from __future__ import annotations

import json

import pytest

from salad_core.broad import build as broad_build
from salad_core.broad.audit import SentenceFilter, audit_table, item_facts, suite_facts
from salad_core.broad.corpus import BroadSpeech
from salad_core.broad.texts import arithmetic_sentences, broad_sentences, speakable
from salad_core.tasks import get_task
from salad_core.tasks.choices import make_item
from salad_core.text import world_form


def capitals_items():
    """Six questions: a word in a fifth of a task's questions or more is its template (here: in two or more)."""
    pairs = (("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Chile", "Santiago"), ("Nepal", "Kathmandu"),
             ("Ghana", "Accra"))
    return [make_item("capitals", f"capitals/{c}", f"What is the capital of {c}?", a, ["Lima", "Oslo", "Rome"],
                      "geography") for c, a in pairs]


def test_a_fact_is_its_answer_with_the_questions_own_words():
    facts = item_facts([i for i in capitals_items() if i is not None])
    france = next(f for f in facts if f["key"].endswith("France"))
    # "what", "is", "the", "capital", "of" are template or stop words: only the country is the subject
    assert france["subject"] == ["france"] and france["said"] == ["paris"]
    keep = SentenceFilter({"capitals": facts})
    assert keep.states("Paris, the capital of France, lies on the Seine.") == {france["key"]}
    assert keep.states("France won the cup; Paris was not mentioned in Japan.") == {france["key"]}  # one sentence
    assert keep.states("Paris is large. France is old.") == set()  # two sentences state nothing
    assert keep.keep(["Tokyo is big.", "Japan's capital is Tokyo."]) == ["Tokyo is big."]
    # the table reads texts as they are written (capitals, punctuation, possessives)
    rows = audit_table({"capitals": facts}, {"speech": ["Japan's capital is Tokyo.", "Tokyo is big."]})
    assert rows == [{"task": "capitals", "source": "speech", "eval_facts": 6, "leaked": 1,
                     "examples": ["capitals:capitals/Japan"]}]


def test_arithmetic_is_stated_with_numbers_in_any_form():
    item = get_task("arithmetic").items("test")[0]  # "What is 7 plus 5?" -> "12"
    keep = SentenceFilter(suite_facts(["arithmetic"]))
    operation = item.question.removeprefix("What is ").rstrip("?")
    assert item.item_id in keep.states(f"{operation} is {item.target}.")
    assert item.item_id in keep.states(f"{world_form(operation)} is {world_form(item.target)}.")  # in words
    # no generated sentence is an item: its operation and operands are never asked
    asked = {i.question.removeprefix("What is ").rstrip("?") for split in ("dev", "test", "fewshot")
             for i in get_task("arithmetic").items(split)}
    generated = arithmetic_sentences(40)
    assert len(generated) > 100 and not any(s.rsplit(" is ", 1)[0] in asked for s in generated)


def test_sentences_are_plain_enough_to_speak():
    assert speakable("A harbor: a sheltered port.") and speakable("17 plus 26 is 43.")
    assert not speakable("It costs 3.5 euros.") and not speakable("Born in 1969.") and not speakable("Café au lait.")


def test_the_planned_corpus_states_no_item_fact_and_is_heard_in_training_voices_only():
    sentences, facts = broad_build.plan_sentences()
    docs, requests = broad_build.plan_documents(sentences)
    rows = audit_table(facts, broad_build.training_sources(docs))
    assert {r["task"] for r in rows} == set(broad_build.suite_tasks())
    assert sum(r["leaked"] for r in rows) == 0 and sum(r["eval_facts"] for r in rows) > 1000
    assert all(any(clip for _, clip in d["spans"]) for d in docs)  # every document is heard somewhere
    voices = {r.voice for r in requests}
    assert broad_build.EVAL_VOICE not in voices and {v.split(":")[0] for v in voices} == {"espeak", "flite", "piper"}
    sources = {s["source"] for s in sentences}
    assert sources == {"wordnet glosses", "wordnet examples", "freshqa", "arithmetic", "entities"}


def test_entity_sentences_name_what_the_tasks_ask_about_without_the_asked_relation():
    entities = broad_sentences(arithmetic=1)["entities"]
    assert "Kyrgyzstan borders China, Kazakhstan, Tajikistan and Uzbekistan." in entities
    assert "Fermium is radioactive." in entities
    assert "The state flower of Alabama is the goldenrod." in entities
    assert all(speakable(s) for s in entities)
    # the names the tasks' questions turn on are heard: most countries, elements and states of their items
    names = {"capitals": lambda i: i.doc_id.split("/", 1)[1], "elements": lambda i: i.doc_id.split("/", 1)[1]}
    text = " ".join(entities).casefold()
    for task, name_of in names.items():
        subjects = {name_of(i).casefold() for i in get_task(task).items("test") if "/" in i.doc_id
                    and not i.doc_id.split("/")[1].isdigit()}
        assert sum(name in text for name in subjects) / len(subjects) > 0.8, task
    # no sentence says the relation a task asks
    asked = ("capital of", "symbol", "atomic number", "family", "succeeded", "postal", "baby")
    assert not [s for s in entities if any(word in s.casefold() for word in asked)
                and "canadian province" not in s.casefold()]
    # and what still states an item's fact is dropped by the audit before anything is spoken
    keep = SentenceFilter(suite_facts(broad_build.suite_tasks()))
    assert "Hydrogen has an atomic weight of about 1." in entities  # number/1 -> hydrogen
    assert "Hydrogen has an atomic weight of about 1." not in keep.keep(entities)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """A corpus built by the real pipeline with a handful of sentences and one dev item per task."""
    cfg = {**broad_build.CONFIG, "sentences": {"wordnet glosses": 6, "wordnet examples": 4, "freshqa": 2,
                                               "arithmetic": 2, "entities": 2}, "dev_items": 1}
    out = tmp_path_factory.mktemp("broad")
    broad_build._write(out, cfg, progress=False)
    return BroadSpeech(out)


@pytest.mark.slow
def test_a_built_corpus_reads_back_as_training_speech(small_corpus):
    corpus = small_corpus
    docs = corpus.speech_docs()
    assert len(docs) >= 5 and all(d.seconds > 0 for d in docs)
    clips = [s.clip_id for d in docs for s in d.spans if s.clip_id]
    frames = corpus.features(clips[:3])
    assert all(f.ndim == 2 and f.shape[1] == 512 for f in frames)  # Whisper-base's width, cached
    info = corpus.info()
    assert info["speech_hours"] > 0 and sum(r["leaked"] for r in info["audit"]) == 0
    assert sum(r["leaked"] for r in corpus.audit()) == 0
    assert len(corpus.text_corpus()) == sum(info["sources"].values())


@pytest.mark.slow
def test_a_built_corpus_serves_the_periodic_evaluation(small_corpus):
    corpus = small_corpus
    assert [d.task for d in corpus.domains] == broad_build.suite_tasks()
    item = corpus.task_items("capitals", "dev")[0]
    assert len(corpus.task_items("capitals", "dev")) == 1  # the spoken dev slice only
    record = corpus.bank.clip(corpus.eval_clip(item.item_id))
    assert record["voice"] == broad_build.EVAL_VOICE and record["role"] == "eval"
    assert len(corpus.task_items("capitals", "test")) == len(get_task("capitals").items("test"))
    with pytest.raises(KeyError, match="spoken dev items"):
        corpus.eval_clip(get_task("capitals").items("test")[0].item_id)
    manifest = json.loads((corpus.root / "manifest.json").read_text())
    assert manifest["eval_voice"] == corpus.eval_voice == "flite:slt"
