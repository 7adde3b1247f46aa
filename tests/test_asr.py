"""The cascade's ASR on real packaged Whisper weights, and the project's WER/CER definitions."""

from __future__ import annotations

import numpy as np
import pytest

from salad_core.asr import Transcriber, char_error_rate, normalize_text, resolve_model, word_error_rate
from salad_core.assets import AssetError
from salad_core.audio import SAMPLE_RATE, AudioError
from salad_core.tts import get_engine, list_engines

SENTENCES = ["The capital of France is Paris.", "Which planet is known as the red planet?"]


@pytest.fixture(scope="module")
def tiny():
    return Transcriber("whisper-tiny.en")


@pytest.fixture(scope="module")
def speech():
    name = "flite" if "flite" in list_engines() else "espeak"
    if name not in list_engines():
        pytest.skip("neither flite nor espeak-ng is installed (apt-get install flite)")
    voice = {"flite": "slt", "espeak": "en-us"}[name]
    return [get_engine(name).synthesize(s, voice) for s in SENTENCES]


def test_tts_speech_transcribes_within_wer_03(tiny, speech):
    hyps = tiny.transcribe_many(speech, progress=False)
    assert len(hyps) == len(SENTENCES) and all(isinstance(h, str) and h for h in hyps)
    assert word_error_rate(SENTENCES, hyps) <= 0.3, hyps


def test_silence_is_refused_before_decoding(tiny):
    with pytest.raises(AudioError, match="audio to transcribe is silent"):
        tiny.transcribe(np.zeros(SAMPLE_RATE, np.float32))


def test_packaged_names_resolve_to_ct2_folders():
    for name in ("whisper-tiny.en", "tiny.en", "openai/whisper-tiny.en"):
        assert (resolve_model(name) / "model.bin").is_file()


def test_unavailable_models_say_how_to_fix(tmp_path):
    offline = r"'large-v3' is not available offline.*download it once.*local CTranslate2 folder"
    with pytest.raises(AssetError, match=offline):
        resolve_model("large-v3")
    with pytest.raises(AssetError, match="not available offline"):
        resolve_model("someone/faster-whisper-nothing")
    with pytest.raises(AssetError, match=r"'no-such-whisper' is neither a packaged name \(whisper-base"):
        resolve_model("no-such-whisper")
    with pytest.raises(AssetError, match=r"has no model.bin"):
        resolve_model(str(tmp_path))


def test_normalize_text():
    assert normalize_text("Don't STOP—now, it's 3.5 apples!") == "dont stop now its 3 5 apples"
    assert normalize_text("  Paris.  ") == "paris"


def test_identical_text_has_zero_error():
    assert word_error_rate("The capital of France is Paris.", "the capital of france is paris") == 0.0
    assert char_error_rate(SENTENCES, [s.upper() for s in SENTENCES]) == 0.0


def test_hand_computed_error_rates():
    # "sat" -> "sit" (1 substitution), "the" deleted: 2 edits over 6 reference words
    assert word_error_rate("the cat sat on the mat", "the cat sit on mat") == pytest.approx(2 / 6)
    # corpus WER pools the edits: (1 substitution + 1 insertion) over 3 + 2 words
    assert word_error_rate(["a b c", "d e"], ["a x c", "d e f"]) == pytest.approx(2 / 5)
    assert char_error_rate("abcd", "abed") == pytest.approx(1 / 4)


def test_error_rate_inputs_are_checked():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="references are empty"):
        word_error_rate(["?!"], ["a"])


def test_numbers_can_be_spelled_to_match_references_written_for_tts():
    assert normalize_text("Iron is 26; Fe.", spell_numbers=True) == "iron is twenty six fe"
    assert normalize_text("year 2024", spell_numbers=True) == "year two zero two four"
    assert char_error_rate("the atomic number of iron is twenty six", "The atomic number of iron is 26.",
                           spell_numbers=True) == 0.0
    assert char_error_rate("twenty six", "26") == 1.0  # numbers as written by default (the cascade's WER)
