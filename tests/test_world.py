"""The mini world's data side, on the `nano` preset: domains, corpus, splits, speech documents, features, caching."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from salad_core.assets import AssetError
from salad_core.audio import add_noise
from salad_core.clips import trim_bounds
from salad_core.documents import split_spans, units
from salad_core.text import number_words, world_form
from salad_core.world import build, build_world, load_world
from salad_core.world.corpus import conversational, in_register, mentions
from salad_core.world.lm_recipes import LM_FOLDER, LM_RECIPES
from salad_core.world.speech import EVAL_VOICES, train_voices


@pytest.fixture(scope="module")
def world():
    return build_world("nano", progress=False)


def test_number_words_and_normalise():
    assert number_words(0) == "zero"
    assert number_words(26) == "twenty six"
    assert number_words(118) == "one hundred eighteen"
    assert world_form("What is the capital of Côte d'Ivoire?") == "what is the capital of cote divoire ?"
    assert world_form("What is 3 plus 14?") == "what is three plus fourteen ?"  # as Whisper writes it, as the world does
    with pytest.raises(ValueError):
        number_words(1000)


def test_domains_and_natural_speech_subset(world):
    names = [d.name for d in world.domains]
    assert len(names) >= 6 and {"capitals", "elements", "arithmetic", "calendar", "animals", "stories"} <= set(names)
    covered = {d.name for d in world.domains if d.in_natural_speech}
    assert covered == {"capitals", "animals", "arithmetic"}
    info = world.info()
    assert info["natural_speech_domains"] == [d.name for d in world.domains if d.in_natural_speech]
    assert {d["task"] for d in info["domains"]} == {f"nano-{n}" for n in names}
    assert set(info["train_voices"]).isdisjoint(info["eval_voices"])
    assert info["speech_hours"] > 0 and info["n_clips"] > 0 and info["n_failed_clips"] == 0


def test_text_corpus_covers_every_domain_and_answers_every_fact_item(world):
    corpus = world.text_corpus()
    vocab = world.vocabulary()
    assert 100 < len(vocab) < 1500
    assert all(w == w.lower() for w in vocab)
    text = "\n".join(corpus)
    for dom in world.domains:
        assert world.text_corpus(dom.name), dom.name
        for item in world.all_items(dom.name):
            if dom.name != "stories":  # stories are a skill: test stories are never in the corpus
                assert f"question : {item.question} answer : {item.target} ." in text, item.item_id
            else:
                assert f"question : {item.question}" not in text, item.item_id


def test_probe_docs_are_held_out(world):
    corpus = set(world.text_corpus())
    for dom in world.domains:
        probes = world.probe_docs(dom.name)
        assert probes and corpus.isdisjoint(probes), dom.name
    spoken = world.probe_speech_docs("capitals")
    assert all(any(s.clip_id for s in d.spans) for d in spoken)
    voices = {world.clip(s.clip_id)["voice"] for d in spoken for s in d.spans if s.clip_id}
    assert voices <= set(EVAL_VOICES)


def test_splits_disjoint_stable_and_four_way(world):
    again = load_world("nano")
    for dom in world.domains:
        ids = {split: [i.doc_id for i in world.task_items(dom.name, split)] for split in ("dev", "test", "fewshot")}
        assert ids["test"], dom.name
        assert not set(ids["dev"]) & set(ids["test"]) and not set(ids["fewshot"]) & set(ids["test"])
        assert ids["test"] == [i.doc_id for i in again.task_items(dom.name, "test")]
        for item in world.task_items(dom.name, "test"):
            assert len(item.choices) == 4 and len(set(item.choices)) == 4
            assert item.task == f"nano-{dom.name}"
            # no option's words begin another's ("twenty" / "twenty six"): a scorer would favour the shorter one
            words = [c.split() for c in item.choices]
            assert not any(a != b and a == b[: len(a)] for a in words for b in words), item.choices
    with pytest.raises(ValueError, match="split"):
        world.task_items("capitals", "train")
    with pytest.raises(KeyError, match="capitals"):
        world.task_items("planets", "test")


def test_prefix_free_distractors_skip_options_that_begin_each_other():
    from salad_core.tasks.choices import pick_distractors

    tiers = [["twenty", "twenty five", "twenty six seven", "thirty six"], ["sixteen", "forty"]]
    picked = pick_distractors("t", "d", "twenty six", tiers, prefix_free=True)
    assert set(picked[:2]) == {"twenty five", "thirty six"} and picked[2] in {"sixteen", "forty"}
    assert "twenty" in pick_distractors("t", "d", "twenty six", [["twenty", "thirty"]], k=2)  # off by default


def test_conversational_register_keeps_every_fact_in_new_wording():
    import random

    doc = "paris is the capital of france . question : what is the capital of peru ? answer : lima ."
    assert mentions(doc) == ["paris is the capital of france .", "question : what is the capital of peru ? answer : lima ."]
    said = conversational(doc, random.Random(3))
    assert "paris is the capital of france" in said and "what is the capital of peru ?" in said
    assert said.index("what is the capital of peru ?") < said.index("lima")
    assert "question :" not in said and "answer :" not in said  # the written QA template is gone
    assert said != doc and said.endswith((".", "?"))
    assert conversational(doc, random.Random(3)) == said  # seeded
    assert in_register(doc, "written", random.Random(0)) == doc
    with pytest.raises(ValueError, match="conversational"):
        in_register(doc, "formal", random.Random(0))


def test_natural_speech_is_conversational_and_the_corpus_is_not(world):
    """The LM pretrains on the corpus only: the natural speech's register words are new to it."""
    spoken_words = {w for doc in world.speech_docs() for w in doc.text.split()}
    corpus_words = {w for doc in world.text_corpus() for w in doc.split()}
    register_words = spoken_words - corpus_words
    assert {"um", "yeah", "think"} & register_words and not {"um", "yeah", "think"} & corpus_words
    assert world.info()["speech_register"] == "conversational"


def test_speech_docs_alternate_and_have_features(world):
    docs = world.speech_docs()
    covered = {d.name for d in world.domains if d.in_natural_speech}
    assert docs and {d.domain for d in docs} == covered
    for doc in docs:
        assert doc.seconds > 0
        kinds = [s.clip_id is not None for s in doc.spans]
        assert all(a != b for a, b in zip(kinds, kinds[1:])), doc.doc_id  # text and speech alternate
        clips = [s.clip_id for s in doc.spans if s.clip_id]
        feats = world.features(clips)
        for clip_id, f in zip(clips, feats):
            record = world.clip(clip_id)
            assert f.shape == (record["frames"], 384) and f.dtype.is_floating_point
            assert record["frames"] == -(-round(record["seconds"] * 16000) // 320)
            assert record["voice"] in world.info()["train_voices"]
        assert doc.seconds == pytest.approx(sum(world.clip(c)["seconds"] for c in clips))


def test_eval_clips_use_eval_voices_and_audio_matches(world):
    item = world.task_items("elements", "test")[0]
    clip_id = world.eval_clip(item.item_id)
    record = world.clip(clip_id)
    assert record["voice"] in EVAL_VOICES and record["role"] == "eval"
    audio = world.audio(clip_id)
    assert audio.dtype == np.float32 and len(audio) == record["end"] - record["start"]
    assert world.features([clip_id])[0].shape[0] == -(-len(audio) // 320)
    with pytest.raises(KeyError, match="no item"):
        world.eval_clip("nano-elements:nothing")


def test_trim_and_noise():
    rng = np.random.default_rng(0)
    tone = (0.3 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    padded = np.concatenate([np.zeros(4000, np.float32), tone, np.zeros(6000, np.float32)])
    start, end = trim_bounds(padded)
    assert 4000 - 640 <= start <= 4000 and 12000 <= end <= 12000 + 640
    noisy = add_noise(tone, 20.0, seed=3)
    snr = 10 * np.log10(np.mean(tone**2) / np.mean((noisy - tone) ** 2))
    assert snr == pytest.approx(20.0, abs=0.5)
    assert np.array_equal(noisy, add_noise(tone, 20.0, seed=3))
    del rng


def test_span_split_alternates():
    import random

    doc = "question : what is the capital of peru ? answer : lima . the capital of chad is ndjamena ."
    assert units(doc)[0] == "question :"
    spans = split_spans(doc, random.Random(1), (2, 3), (2, 3))
    assert " ".join(s.text for s in spans) == doc
    assert all(a.spoken != b.spoken for a, b in zip(spans, spans[1:]))
    assert [s.spoken for s in split_spans(doc, random.Random(1), (2, 3), (2, 3), all_spoken=True)] == [True]


def test_voice_sets_disjoint():
    train = set(train_voices(16))
    assert len(train) > 50 and train.isdisjoint(EVAL_VOICES)


def test_build_is_cached(world):
    started = time.monotonic()
    again = build_world("nano", progress=False)
    assert time.monotonic() - started < 2.0
    assert again.root == world.root


def test_the_build_pretrains_the_worlds_lm_beside_the_speech(world):
    from salad_core.world import lm

    report = lm.lm_report(world)  # present straight after the build: nothing trained it on first use
    assert report is not None and report["world"] == "nano"
    assert report["threads"] == 1  # one thread throughout: the same LM from every build, on any machine
    assert not (world.root / build.LM_LOG).exists() and not (world.root / build.LM_PROGRESS).exists()
    recipe = LM_RECIPES[LM_FOLDER]  # what the LM read is the finished world's text, cut as its recipe says
    tokenizer = lm.build_tokenizer(lm.tokenizer_texts(world), recipe["tokenizer"], recipe.get("vocab_size"))
    assert len(tokenizer) == report["vocab_size"]


def test_a_failed_lm_pretraining_fails_the_build_with_its_log(tmp_path):
    failing = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit('the LM ran out of words')"],
                               stderr=open(tmp_path / build.LM_LOG, "w"))
    with pytest.raises(AssetError, match="(?s)LM failed.*ran out of words.*--no-lm"):
        build._finish_lm(failing, tmp_path)


def test_tasks_registered(world):
    from salad_core.tasks import get_task

    task = get_task("nano-capitals")
    assert len(task.items("test")) == len(world.task_items("capitals", "test"))


def test_load_world_without_build_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("SALAD_CACHE", str(tmp_path))
    with pytest.raises(AssetError, match="salad world build --corpus nano"):
        load_world("nano")
    with pytest.raises(AssetError, match="preset"):
        load_world("huge")
    from salad_core.tasks import available_tasks

    assert "nano-capitals" not in available_tasks()


def test_another_encoder_gets_its_own_frames_from_the_clips_audio(world):
    from tests.tiny_models import tiny_encoder

    encoder = tiny_encoder()
    clip = next(span.clip_id for span in world.speech_docs()[0].spans if span.clip_id)
    assert world.uses_encoder(None) and not world.uses_encoder(encoder)
    cached = world.features([clip])[0]
    other = world.features([clip, clip], encoder)
    assert other[0].shape[1] == encoder.hidden_size != cached.shape[1]
    expected = encoder.encode([world.audio(clip)])[0].float()
    torch.testing.assert_close(other[0], expected)
    torch.testing.assert_close(other[1], expected)
    assert list(world.bank._other_frames[str(encoder.name)]) == [clip]  # encoded once, memoised


def test_the_natural_speech_exports_as_a_users_corpus(world, tmp_path):
    """`salad world export --speech-dataset`: one row per span, in document order, every one with audio (the spoken
    spans are the world's clips, the read ones spoken now in the document's voice), as a `datasets` folder."""
    import io

    import datasets
    import soundfile as sf

    from salad_core.cli import main

    assert main(["world", "export", "--corpus", "nano", "--out", str(tmp_path), "--speech-dataset", "--json"]) == 0
    rows = datasets.load_from_disk(str(tmp_path / "speech")).cast_column("audio", datasets.Audio(decode=False))
    docs = [d for d in world.speech_docs() if any(s.clip_id for s in d.spans)]
    by_doc: dict[str, list[dict]] = {}
    for row in rows:
        by_doc.setdefault(row["doc"], []).append(row)
    assert sorted(by_doc) == sorted(d.doc_id for d in docs) and list(by_doc) != [d.doc_id for d in docs]  # shuffled
    for doc in docs:
        assert " ".join(r["text"] for r in by_doc[doc.doc_id]) == doc.text  # every span, in order
        assert [r["spoken_in_world"] for r in by_doc[doc.doc_id]] == [s.clip_id is not None for s in doc.spans]
    first = next(r for r in rows if r["spoken_in_world"])
    audio, rate = sf.read(io.BytesIO(first["audio"]["bytes"]), dtype="float32")
    clip = world.audio(f"{first['doc']}-{first['pos']:02d}")
    assert rate == 16000 and np.abs(audio - clip).max() < 1e-3  # the world's clip (16-bit FLAC)
    read = next(r for r in rows if not r["spoken_in_world"])
    assert sf.info(io.BytesIO(read["audio"]["bytes"])).duration > 0.2
