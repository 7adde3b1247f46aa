"""Interleaved documents from natural speech: consecutive utterances of a document, spans planned in words, heard
stretches inside one utterance, cut at word timings where they are known."""

import random

from salad_core.speech_data.documents import Heard, SpanRanges, document_chunks, plan_spans
from salad_core.speech_data.utterance import AudioRef, Utterance, Word


def utterance(utt_id: str, doc: str, pos: float, text: str, timed: bool = False) -> Utterance:
    words = tuple(Word(w, 0.5 * k, 0.5 * k + 0.4) for k, w in enumerate(text.split())) if timed else None
    return Utterance(utt_id, doc, pos, text, AudioRef(path=f"/{utt_id}.wav"), words=words)


def test_chunks_are_consecutive_utterances_of_one_document_in_position_order():
    rows = [utterance("a2", "A", 2, "two words"), utterance("a1", "A", 1, "one"), utterance("b1", "B", 1, "x y z"),
            utterance("a3", "A", 3, "again")]
    chunks = [[u.utt_id for u in chunk] for chunk in document_chunks(rows)]
    assert chunks == [["a1", "a2"], ["b1"], ["a3"]]  # A comes back later: another chunk


def test_a_long_document_is_cut_at_about_max_words():
    rows = [utterance(f"u{k}", "A", k, "w " * 10) for k in range(10)]
    assert [len(c) for c in document_chunks(rows, max_words=30)] == [3, 3, 3, 1]


def test_untimed_utterances_are_read_or_heard_whole_in_alternation():
    chunk = [utterance(f"u{k}", "A", k, f"word{k} more words") for k in range(6)]
    spans = plan_spans(chunk, random.Random(0), SpanRanges((2, 3), (2, 3)))
    assert [text for text, _ in spans] == [u.text for u in chunk]  # 3 words each: one utterance per span
    heard = [h for _, h in spans]
    assert all((a is None) != (b is None) for a, b in zip(heard, heard[1:]))  # alternating
    assert all(h == Heard(u) for h, u in zip(heard, chunk) if h is not None)  # heard whole
    varied = [utterance(f"v{k}", "A", k, " ".join(["w"] * (2 + 3 * k))) for k in range(6)]
    spans = plan_spans(varied, random.Random(1), SpanRanges((1, 1), (1, 1)))
    assert [text for text, _ in spans] == [u.text for u in varied]  # spans of a word: one utterance each, any length


def test_timed_utterances_are_cut_at_word_boundaries_and_a_speech_span_stays_in_one_utterance():
    chunk = [utterance("u1", "A", 1, " ".join(f"a{k}" for k in range(20)), timed=True),
             utterance("u2", "A", 2, " ".join(f"b{k}" for k in range(20)), timed=True)]
    for seed in range(20):
        spans = plan_spans(chunk, random.Random(seed), SpanRanges((5, 15), (10, 30)))
        assert " ".join(text for text, _ in spans) == " ".join(u.text for u in chunk)  # every word, in order
        for text, heard in spans:
            if heard is None:
                continue
            words = text.split()
            letter = "a" if heard.utterance.utt_id == "u1" else "b"
            assert len(words) <= 15 and all(w.startswith(letter) for w in words)
            first, last = int(words[0][1:]), int(words[-1][1:])
            assert (heard.start, heard.end) == (0.5 * first, 0.5 * last + 0.4)  # the words' own times


def test_a_document_that_would_hear_nothing_hears_its_first_utterance():
    chunk = [utterance("u1", "A", 1, "short one"), utterance("u2", "A", 2, "and more")]
    for seed in range(10):
        spans = plan_spans(chunk, random.Random(seed), SpanRanges((5, 15), (10, 30)))
        assert any(heard for _, heard in spans)
        assert " ".join(text for text, _ in spans) == "short one and more"
