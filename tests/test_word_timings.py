"""Word timings: PocketSphinx's forced alignment of the transcript (its tokens, espeak-ng's pronunciations for words
outside its dictionary, the fallback to Whisper's times), the alignment of a transcript to the words Whisper heard (no
model), the pause snapping, the disk cache, the CER filter, and the accuracy on speech whose word boundaries are known
by construction (tests/timing_clips.py)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from salad_core.audio import SAMPLE_RATE, load_audio
from salad_core.speech_data.forced_align import SphinxAligner, sphinx_tokens
from salad_core.speech_data.pronounce import arpabet_of_ipa, espeak_arpabet
from salad_core.speech_data.snap import snap_boundaries
from salad_core.speech_data.timing_cache import TimingCache, cached_word_timings
from salad_core.speech_data.timings import (
    MAX_CER,
    Timing,
    align_words,
    calibrated,
    drop_reason,
    keep,
    transcript_words,
    word_timings,
)
from salad_core.speech_data.utterance import Word
from salad_core.tts import VoiceSpec
from tests.timing_clips import TEST_SENTENCES, boundary_errors, build_clips, sentence_clip, share_within

REPO = Path(__file__).resolve().parent.parent
HEARD = [("The", 0.1, 0.3), ("cat", 0.3, 0.6), ("sat", 0.6, 0.9), ("down.", 0.9, 1.3)]


class FakeASR:
    """Hears `heard` in any audio and counts how often it was asked."""

    model_name = "fake"

    def __init__(self, heard: list[tuple[str, float, float]]):
        self.heard, self.calls = heard, 0

    def words(self, audio: np.ndarray) -> list[tuple[str, float, float]]:
        self.calls += 1
        return list(self.heard)

    def transcribe(self, audio: np.ndarray) -> str:
        self.calls += 1
        return " ".join(word for word, _, _ in self.heard)


class FakeAligner:
    """Aligns any audio to `spans` (None: cannot align) and counts how often it was asked."""

    def __init__(self, spans: list[tuple[float, float]] | None):
        self.spans, self.calls = spans, 0

    def align(self, audio: np.ndarray, words: list[str]) -> list[tuple[float, float]] | None:
        self.calls += 1
        return self.spans


SPANS = [(0.12, 0.31), (0.31, 0.62), (0.62, 0.88), (0.88, 1.25)]  # the aligner's times of "The cat sat down."


def spans(timing: Timing) -> list[tuple[float, float]]:
    return [(w.start, w.end) for w in timing.words]


def check_ordered(timing: Timing, seconds: float) -> None:
    ends = [0.0] + [t for w in timing.words for t in (w.start, w.end)] + [seconds]
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(ends)), timing.words


# ---------------------------------------------------------------------------------------------------------------
# Alignment, without a model


def test_words_heard_as_written_take_their_times():
    timing = align_words(["The", "cat", "sat", "down."], HEARD, 2.0)
    assert timing.words == (Word("The", 0.1, 0.3), Word("cat", 0.3, 0.6), Word("sat", 0.6, 0.9),
                            Word("down.", 0.9, 1.3))
    assert (timing.matched, timing.interpolated, timing.cer) == (4, 0, 0.0)
    assert timing.heard == "The cat sat down."


def test_a_misheard_word_is_timed_by_the_word_heard_in_its_place():
    heard = [("The", 0.1, 0.3), ("bat", 0.3, 0.6), ("sat", 0.6, 0.9)]
    timing = align_words(["The", "cat", "sat"], heard, 1.0)
    assert timing.words[1] == Word("cat", 0.3, 0.6)  # the transcript's spelling, the ASR's times
    assert timing.matched == 3
    assert timing.cer == pytest.approx(1 / len("the cat sat"), abs=1e-4)


def test_words_only_the_asr_heard_are_ignored():
    heard = [("The", 0.1, 0.3), ("big", 0.3, 0.5), ("cat", 0.5, 0.8), ("sat", 0.8, 1.0), ("uh", 1.0, 1.2)]
    timing = align_words(["The", "cat", "sat"], heard, 1.5)
    assert spans(timing) == [(0.1, 0.3), (0.5, 0.8), (0.8, 1.0)]
    assert timing.matched == 3 and timing.cer > 0


def test_a_word_the_asr_missed_is_interpolated_between_its_neighbours():
    heard = [("The", 0.1, 0.3), ("cat", 0.7, 1.0)]
    timing = align_words(["The", "black", "cat"], heard, 1.2)
    assert timing.words[1] == Word("black", 0.3, 0.7)  # the gap the ASR left
    assert (timing.matched, timing.interpolated) == (2, 1)
    touching = align_words(["The", "black", "cat"], [("The", 0.1, 0.4), ("cat", 0.4, 0.8)], 1.2)
    black = touching.words[1]
    assert black.end - black.start >= 0.04  # squeezed in, its neighbours give up time
    check_ordered(touching, 1.2)


def test_missed_words_share_their_gap_by_length():
    timing = align_words(["a", "bb", "cccc", "end"], [("end", 0.7, 1.0)], 1.0)
    assert spans(timing)[:3] == [(0.0, 0.1), (0.1, 0.3), (0.3, 0.7)]
    assert timing.interpolated == 3


def test_numbers_match_however_they_are_written():
    spelled = align_words(["twenty", "six", "apples"], [("26", 0.0, 1.0), ("apples", 1.0, 1.5)], 2.0)
    assert spans(spelled)[:2] == [(0.0, 0.667), (0.667, 1.0)]  # "26" shared by characters: twenty 6, six 3
    assert spelled.matched == 3 and spelled.cer == 0.0
    digits = align_words(["26", "apples"], [("twenty", 0.0, 0.6), ("six", 0.6, 1.0), ("apples", 1.0, 1.5)], 2.0)
    assert spans(digits) == [(0.0, 1.0), (1.0, 1.5)]
    assert digits.cer == 0.0


def test_punctuation_stays_with_the_transcript_word_and_alone_is_no_word():
    words = transcript_words("Hello, world! — it's   me.")
    assert words == ["Hello,", "world!", "it's", "me."]
    heard = [("Hello", 0.0, 0.4), ("world.", 0.4, 0.8), ("Its", 0.8, 1.0), ("me?", 1.0, 1.2)]
    timing = align_words(words, heard, 1.5)
    assert [w.text for w in timing.words] == words and timing.cer == 0.0 and timing.matched == 4
    with pytest.raises(ValueError, match="has no words"):
        transcript_words(" — ... ")


def test_times_are_ordered_and_inside_the_audio_whatever_the_asr_says():
    heard = [("one", 0.5, 0.9), ("two", 0.3, 0.6), ("three", 1.8, 2.6)]  # overlapping, past the end
    timing = align_words(["one", "two", "three", "four"], heard, 2.0)
    check_ordered(timing, 2.0)
    assert timing.words[-1].end <= 2.0
    nothing = align_words(["one", "two"], [], 1.5)
    assert spans(nothing) == [(0.0, 0.75), (0.75, 1.5)] and nothing.interpolated == 2 and nothing.cer == 1.0


def test_calibration_undoes_a_known_models_lag_only():
    heard = [("a", 0.0, 0.5), ("b", 0.5, 1.0)]
    assert calibrated(heard, "whisper-base") == [("a", 0.05, 0.55), ("b", 0.55, 1.05)]
    assert calibrated(heard, "tiny.en")[1] == pytest.approx(("b", 0.42, 0.92))
    assert calibrated(heard, "some/other-whisper") == heard


def test_a_boundary_near_a_pause_moves_to_its_edges():
    rng = np.random.default_rng(0)
    tone = (0.5 * np.sin(np.arange(SAMPLE_RATE // 2) * 0.2)).astype(np.float32)
    audio = np.concatenate([np.zeros(4000), tone, np.zeros(3200), tone, np.zeros(4000)]).astype(np.float32)
    audio += 1e-3 * rng.standard_normal(len(audio)).astype(np.float32)
    # true words: 0.25-0.75 and 0.95-1.45; the ASR says they meet at 0.80
    snapped = snap_boundaries(audio, [(0.25, 0.80), (0.80, 1.45)])
    assert snapped[0][1] == pytest.approx(0.75, abs=0.011) and snapped[1][0] == pytest.approx(0.95, abs=0.011)
    assert snapped[0][0] == 0.25 and snapped[1][1] == 1.45
    far = snap_boundaries(audio, [(0.25, 0.50), (0.50, 1.45)])  # the pause is beyond the window
    assert far == [(0.25, 0.50), (0.50, 1.45)]


# ---------------------------------------------------------------------------------------------------------------
# Forced alignment


def test_the_aligner_times_the_words_and_whisper_only_judges_the_transcript():
    asr, aligner = FakeASR(HEARD[:3] + [("up", 0.9, 1.3)]), FakeAligner(SPANS)
    audio = np.zeros(2 * SAMPLE_RATE, np.float32)
    timing = word_timings(audio, "The cat sat down.", asr, aligner=aligner, snap=False)
    assert spans(timing) == SPANS and [w.text for w in timing.words] == ["The", "cat", "sat", "down."]
    assert (timing.method, timing.matched, timing.interpolated, timing.heard) == ("aligned", 4, 0, "The cat sat up")
    assert timing.cer == pytest.approx(4 / len("the cat sat down"), abs=1e-4)  # "down" heard as "up"
    assert asr.calls == 1 and aligner.calls == 1  # one plain decoding: Whisper's word times are not asked for


def test_where_the_alignment_fails_whispers_times_are_taken():
    asr, aligner = FakeASR(HEARD), FakeAligner(None)
    timing = word_timings(np.zeros(2 * SAMPLE_RATE, np.float32), "The cat sat down.", asr, aligner=aligner, snap=False)
    expected = align_words(["The", "cat", "sat", "down."], calibrated(HEARD, "fake"), 2.0)
    assert timing == expected and timing.method == "whisper"
    whisper = word_timings(np.zeros(SAMPLE_RATE, np.float32), "The cat", asr, method="whisper", aligner=aligner)
    assert whisper.method == "whisper" and aligner.calls == 1  # asked for Whisper's times: no alignment
    with pytest.raises(ValueError, match="unknown method 'sphinx'"):
        word_timings(np.zeros(SAMPLE_RATE, np.float32), "The cat", asr, method="sphinx")


def test_aligned_boundaries_are_snapped_to_a_pause_at_them():
    tone = (0.5 * np.sin(np.arange(SAMPLE_RATE // 2) * 0.2)).astype(np.float32)
    audio = np.concatenate([np.zeros(4000), tone, np.zeros(3200), tone, np.zeros(4000)]).astype(np.float32)
    audio += 1e-3 * np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32)
    aligner = FakeAligner([(0.25, 0.95), (0.95, 1.45)])  # the pause (0.75-0.95) let into the first word
    snapped = word_timings(audio, "one two", FakeASR([("one", 0, 0), ("two", 0, 0)]), aligner=aligner)
    assert snapped.words[0].end == pytest.approx(0.75, abs=0.011) and snapped.words[1].start == pytest.approx(0.95)
    raw = word_timings(audio, "one two", FakeASR([]), aligner=aligner, snap=False)
    assert spans(raw) == [(0.25, 0.95), (0.95, 1.45)]


def test_the_aligners_tokens_are_its_dictionarys_spellings():
    assert sphinx_tokens("Don't") == ["don't"] and sphinx_tokens("dogs'") == ["dogs"]
    assert sphinx_tokens("26,") == ["twenty", "six"] and sphinx_tokens("well-known") == ["well", "known"]
    assert sphinx_tokens("\u2018It\u2019s") == ["it's"] and sphinx_tokens("\u2014") == []


def test_espeak_ngs_ipa_becomes_arpabet():
    assert arpabet_of_ipa("f ˈɛ s t ɪ v əl") == "F EH S T IH V AH L"
    assert arpabet_of_ipa("dʒ ˈʌ dʒ") == "JH AH JH" and arpabet_of_ipa("s p ˈoː ɹ ə") == "S P AO R AH"
    assert arpabet_of_ipa("k ˈɑːɹ") == "K AA R" and arpabet_of_ipa("ɑːː") == "AA"  # a stray length mark
    assert arpabet_of_ipa("k ʘ") is None and arpabet_of_ipa("") is None  # a click has no ARPABET phone


def needs_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: apt-get install espeak-ng")


def test_a_word_outside_the_dictionary_is_pronounced_by_espeak_ng():
    needs_espeak()
    phones = espeak_arpabet("zorblax")
    assert phones is not None and phones.split()[0] == "Z" and phones.split()[-2:] == ["K", "S"]
    assert SphinxAligner()._load().lookup_word("zorblax") is None


@pytest.mark.parametrize("voice", ["en-us", "en-gb"])
def test_pocketsphinx_aligns_running_speech_a_made_up_word_included(voice):
    needs_espeak()
    text = "Yesterday the Zorblax family crossed the quiet river."
    try:
        clip = sentence_clip(text, VoiceSpec("espeak", voice))
    except OSError as err:
        pytest.skip(f"libespeak-ng is not installed ({err}): apt-get install espeak-ng")
    found = SphinxAligner().align(clip.audio, transcript_words(text))
    assert found is not None
    words = tuple(Word(w, start, end) for w, (start, end) in zip(text.split(), found))
    check_ordered(Timing(words, 0.0, 0, 0), len(clip.audio) / SAMPLE_RATE)
    errors = boundary_errors(words, clip)
    assert len(errors) == 7 and max(errors) <= 0.08, errors  # measured: all within 25 ms


def test_clean_synthetic_speech_is_aligned_under_a_noise_floor():
    """TTS output as it is, with digital silence: without the added noise floor the search failed on it."""
    from salad_core.tts.cache import synthesize

    needs_espeak()
    text = "the old lighthouse keeper climbed the narrow stairs every evening to light the great lamp for the ships"
    audio = load_audio(synthesize(text, VoiceSpec("espeak", "en-gb")))
    found = SphinxAligner().align(audio, transcript_words(text))
    assert found is not None and len(found) == 18
    check_ordered(Timing(tuple(Word("w", a, b) for a, b in found), 0.0, 0, 0), len(audio) / SAMPLE_RATE)


def test_pocketsphinx_gives_up_where_the_words_cannot_fit():
    aligner = SphinxAligner()
    noise = 0.01 * np.random.default_rng(3).standard_normal(SAMPLE_RATE // 5).astype(np.float32)
    assert aligner.align(noise, "one two three four five six seven eight nine ten".split()) is None  # 0.2 s
    assert aligner.align(noise, ["\u2014"]) is None  # nothing to say


# ---------------------------------------------------------------------------------------------------------------
# The CER filter


def test_a_transcript_that_disagrees_with_the_audio_is_dropped_with_its_reason():
    wrong = align_words(["The", "dog", "ran", "away"], HEARD, 2.0)
    assert wrong.cer > MAX_CER and not keep(wrong)
    assert drop_reason(wrong) == f"transcript disagrees with the ASR: CER {wrong.cer:.2f} > 0.30"
    right = align_words(["The", "cat", "sat", "down."], HEARD, 2.0)
    assert keep(right) and drop_reason(right) is None
    assert drop_reason(Timing((), 0.52, 0, 0)) == "transcript disagrees with the ASR: CER 0.52 > 0.30"
    assert keep(Timing((), 0.52, 0, 0), max_cer=0.6)


# ---------------------------------------------------------------------------------------------------------------
# The cache


def test_the_cache_times_an_utterance_once(tmp_path):
    cache, asr, aligner = TimingCache(tmp_path), FakeASR(HEARD), FakeAligner(SPANS)
    audio = np.random.default_rng(1).standard_normal(2 * SAMPLE_RATE).astype(np.float32) * 0.1
    first = cached_word_timings(audio, "The cat sat down.", asr, aligner=aligner, cache=cache)
    again = cached_word_timings(audio.copy(), "The cat sat down.", asr, aligner=aligner, cache=cache)
    assert asr.calls == aligner.calls == 1 and again == first and first.method == "aligned"
    cached_word_timings(audio, "The cat sat.", asr, aligner=FakeAligner(SPANS[:3]), cache=cache)  # another transcript
    cached_word_timings(audio[1:], "The cat sat down.", asr, aligner=aligner, cache=cache)  # other audio
    whisper = cached_word_timings(audio, "The cat sat down.", asr, method="whisper", cache=cache)  # another method
    assert whisper.method == "whisper" and asr.calls == 4 and len(list(tmp_path.rglob("*.json"))) == 4
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_cache_survives_the_process_and_a_damaged_entry_is_redone(tmp_path):
    audio = np.random.default_rng(2).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    np.save(tmp_path / "audio.npy", audio)
    first = cached_word_timings(audio, "The cat sat down.", FakeASR(HEARD), aligner=FakeAligner(SPANS),
                                cache=TimingCache(tmp_path / "c"))
    script = (
        "import json, sys, numpy as np\n"
        "from salad_core.speech_data.timing_cache import TimingCache, cached_word_timings\n"
        "class Deaf:\n"
        "    model_name = 'fake'\n"
        "    def words(self, audio): raise SystemExit('the ASR ran again')\n"
        "    transcribe = words\n"
        f"audio = np.load({str(tmp_path / 'audio.npy')!r})\n"
        f"t = cached_word_timings(audio, 'The cat sat down.', Deaf(), cache=TimingCache({str(tmp_path / 'c')!r}))\n"
        "print(json.dumps(t.to_json()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert Timing.from_json(json.loads(done.stdout)) == first
    [entry] = list((tmp_path / "c").rglob("*.json"))
    entry.write_text("{not json")
    asr = FakeASR(HEARD)
    assert cached_word_timings(audio, "The cat sat down.", asr, aligner=FakeAligner(SPANS),
                               cache=TimingCache(tmp_path / "c")) == first
    assert asr.calls == 1


# ---------------------------------------------------------------------------------------------------------------
# Accuracy on speech with known boundaries, the held-out sentences (the slow lane: Whisper base, ~1.5 min of CPU)

TARGET_SHARE = 0.90  # the issue's target: boundaries within 80 ms (measured, base: 98 % running, 93 % words)
WHISPER_SHARE = 0.70  # Whisper's own times, the fallback where the alignment fails (measured: 78 %), less noise


@pytest.fixture(scope="module")
def base_asr():
    from salad_core.asr import Transcriber

    return Transcriber("whisper-base")


@pytest.fixture(scope="module")
def held_out() -> dict[str, list]:
    """The held-out sentences as running espeak-ng speech and as words laid end to end."""
    try:
        return {"running": build_clips(TEST_SENTENCES, running=True),
                "words": build_clips(TEST_SENTENCES, running=False)}
    except OSError as err:
        pytest.skip(f"libespeak-ng is not installed ({err}): apt-get install espeak-ng")


def kept_share(clips: list, timings: list[Timing], label: str) -> float:
    """The share of the kept clips' boundaries within 80 ms of the truth, printed with how it was reached."""
    errors = [e for c, t in zip(clips, timings) if keep(t) for e in boundary_errors(t.words, c)]
    share = share_within(errors, 0.08)
    aligned, kept = sum(t.method == "aligned" for t in timings), sum(keep(t) for t in timings)
    print(f"\nword timings, {label}: {share:.1%} of {len(errors)} boundaries within 80 ms ({kept} of {len(clips)} "
          f"clips kept by the CER filter, {aligned} force-aligned)")
    return share


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["running", "words"])
def test_word_timings_meet_the_issues_target(held_out, base_asr, kind):
    clips = held_out[kind]
    timings = [word_timings(c.audio, c.text, base_asr) for c in clips]
    for clip, timing in zip(clips, timings):
        assert [w.text for w in timing.words] == clip.text.split()
        check_ordered(timing, len(clip.audio) / SAMPLE_RATE)
    assert sum(keep(t) for t in timings) >= len(clips) - 2
    assert sum(t.method == "aligned" for t in timings) >= len(clips) - 2
    assert kept_share(clips, timings, f"aligned, {kind}") >= TARGET_SHARE


@pytest.mark.slow
def test_whispers_own_times_the_fallback_come_near_the_truth(held_out, base_asr):
    clips = held_out["running"]
    timings = [word_timings(c.audio, c.text, base_asr, method="whisper") for c in clips]
    assert all(t.method == "whisper" for t in timings)
    assert kept_share(clips, timings, "Whisper base's own, running") >= WHISPER_SHARE


@pytest.mark.slow
def test_real_audio_with_a_wrong_transcript_is_dropped(held_out, base_asr):
    clip = held_out["running"][0]
    wrong = word_timings(clip.audio, TEST_SENTENCES[1], base_asr)
    reason = drop_reason(wrong)
    assert not keep(wrong) and reason is not None and reason.startswith("transcript disagrees with the ASR: CER ")
