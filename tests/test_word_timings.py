"""Word timings from the cascade's Whisper: the alignment of a transcript to the words heard (no model), the pause
snapping, the disk cache, the CER filter, and the accuracy on speech whose word boundaries are known by construction
(tests/timing_clips.py)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from salad_core.audio import SAMPLE_RATE
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
from tests.timing_clips import TEST_SENTENCES, boundary_errors, build_clips, share_within

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
    cache, asr = TimingCache(tmp_path), FakeASR(HEARD)
    audio = np.random.default_rng(1).standard_normal(2 * SAMPLE_RATE).astype(np.float32) * 0.1
    first = cached_word_timings(audio, "The cat sat down.", asr, cache=cache)
    again = cached_word_timings(audio.copy(), "The cat sat down.", asr, cache=cache)
    assert asr.calls == 1 and again == first
    cached_word_timings(audio, "The cat sat.", asr, cache=cache)  # another transcript: another entry
    cached_word_timings(audio[1:], "The cat sat down.", asr, cache=cache)  # other audio: another entry
    assert asr.calls == 3 and len(list(tmp_path.rglob("*.json"))) == 3
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_cache_survives_the_process_and_a_damaged_entry_is_redone(tmp_path):
    audio = np.random.default_rng(2).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    np.save(tmp_path / "audio.npy", audio)
    first = cached_word_timings(audio, "The cat sat down.", FakeASR(HEARD), cache=TimingCache(tmp_path / "c"))
    script = (
        "import json, sys, numpy as np\n"
        "from salad_core.speech_data.timing_cache import TimingCache, cached_word_timings\n"
        "class Deaf:\n"
        "    model_name = 'fake'\n"
        "    def words(self, audio): raise SystemExit('the ASR ran again')\n"
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
    assert cached_word_timings(audio, "The cat sat down.", asr, cache=TimingCache(tmp_path / "c")) == first
    assert asr.calls == 1


# ---------------------------------------------------------------------------------------------------------------
# Accuracy on speech with known boundaries, Whisper base (the slow lane: a real model, ~30 s of CPU)

TARGET_SHARE, REACHED_SHARE = 0.90, 0.70  # the issue's target; what these timings reach (0.78 measured), less noise


@pytest.fixture(scope="module")
def base_asr():
    from salad_core.asr import Transcriber

    return Transcriber("whisper-base")


@pytest.fixture(scope="module")
def held_out(base_asr):
    """(clips, timings) of the held-out sentences as running espeak-ng speech, timed by Whisper base."""
    try:
        clips = build_clips(TEST_SENTENCES, running=True)
    except OSError as err:
        pytest.skip(f"libespeak-ng is not installed ({err}): apt-get install espeak-ng")
    return clips, [word_timings(c.audio, c.text, base_asr) for c in clips]


@pytest.fixture(scope="module")
def boundary_share(held_out):
    clips, timings = held_out
    errors = [e for c, t in zip(clips, timings) if keep(t) for e in boundary_errors(t.words, c)]
    share = share_within(errors, 0.08)
    kept = sum(keep(t) for t in timings)
    print(f"\nword timings, Whisper base: {share:.1%} of {len(errors)} boundaries within 80 ms "
          f"({kept} of {len(clips)} clips kept by the CER filter)")
    return share


@pytest.mark.slow
def test_word_timings_come_near_the_truth(held_out, boundary_share):
    clips, timings = held_out
    assert boundary_share >= REACHED_SHARE
    for clip, timing in zip(clips, timings):
        assert [w.text for w in timing.words] == clip.text.split()
        check_ordered(timing, len(clip.audio) / SAMPLE_RATE)
    assert sum(keep(t) for t in timings) >= len(clips) - 2


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the issue's target: Whisper's cross-attention times are too coarse for it "
                                       "(benchmarks/word_timings.py); reached: about 78 %")
def test_word_timings_meet_the_issues_target(boundary_share):
    assert boundary_share >= TARGET_SHARE


@pytest.mark.slow
def test_real_audio_with_a_wrong_transcript_is_dropped(held_out, base_asr):
    clips, _ = held_out
    clip = clips[0]
    wrong = word_timings(clip.audio, TEST_SENTENCES[1], base_asr)
    reason = drop_reason(wrong)
    assert not keep(wrong) and reason is not None and reason.startswith("transcript disagrees with the ASR: CER ")
