"""TTS engines, registry, content-addressed cache and the all-core batch synthesizer, on the real engines."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from salad_core.assets import MissingPackageError
from salad_core.audio import SAMPLE_RATE, load_audio
from salad_core.tts import (
    ENGINES,
    MissingProgramError,
    TTSCache,
    TTSError,
    VoiceSpec,
    get_engine,
    list_engines,
    list_voices,
    missing,
    synthesize,
    synthesize_many,
)

SENTENCE = "The capital of France is Paris."
# One voice per engine; Kokoro's is a blend, so the blend path is exercised end to end.
VOICE = {"espeak": "en-us", "flite": "slt", "piper": "en_US-joe-medium", "kokoro": "jf_alpha+jm_kumo@0.5"}


def available(name: str):
    problem = missing(name)
    if problem is not None:
        pytest.skip(str(problem))
    return get_engine(name)


@pytest.fixture(scope="module")
def renders():
    """(engine -> {speed: audio}) for SENTENCE at 0.8 and 1.3, rendered once for the module."""
    out = {}
    for name in list_engines():
        engine = get_engine(name)
        out[name] = {s: engine.synthesize(SENTENCE, VOICE[name], s) for s in (0.8, 1.3)}
    return out


def test_registry_lists_only_runnable_engines():
    engines = list_engines()
    assert set(engines) <= set(ENGINES)
    for name in ENGINES:
        assert (name in engines) == (missing(name) is None)


@pytest.mark.parametrize("name", list(ENGINES))
def test_engine_speaks_16k_mono_float(name, renders):
    available(name)
    audio = renders[name][0.8]
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.05 < float(np.max(np.abs(audio))) <= 1.0
    seconds = len(audio) / SAMPLE_RATE
    assert 1.0 < seconds < 5.0, f"{name}: {seconds:.2f} s for a 6-word sentence"


@pytest.mark.parametrize("name", list(ENGINES))
def test_faster_speed_gives_shorter_audio(name, renders):
    available(name)
    slow, fast = len(renders[name][0.8]), len(renders[name][1.3])
    assert fast < 0.85 * slow, f"{name}: speed 1.3 gave {fast} samples vs {slow} at 0.8"


def test_voice_lists():
    if "espeak" in list_engines():
        voices = list_voices("espeak")
        assert {"en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-us+f3", "en-gb+m2"} <= set(voices)
        assert not any(v.startswith("en-uk") for v in voices)  # MBROLA voices need downloads
    if "flite" in list_engines():
        assert {"kal", "kal16", "awb", "rms", "slt"} <= set(list_voices("flite"))
        assert "awb_time" not in list_voices("flite")
    if "piper" in list_engines():
        assert list_voices("piper") == ["en_US-joe-medium"]
    if "kokoro" in list_engines():
        assert list_voices("kokoro") == ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]


def test_kokoro_blend_is_a_convex_combination():
    engine = available("kokoro")
    a, b = engine.style("jf_alpha"), engine.style("jm_kumo")
    np.testing.assert_allclose(engine.style("jf_alpha+jm_kumo@0.25"), 0.25 * a + 0.75 * b, rtol=1e-6)
    assert engine.check_voice("jf_alpha+jm_kumo") == "jf_alpha+jm_kumo@0.5"
    assert engine.check_voice("jf_alpha+jm_kumo@0.50") == "jf_alpha+jm_kumo@0.5"
    for bad in ("jf_alpha+jm_kumo@1.5", "jf_alpha+nobody@0.5", "jf_alpha+jm_kumo@x"):
        with pytest.raises(TTSError, match=r"no voice .*Blends: 'a\+b@w'"):
            engine.check_voice(bad)


def test_unknown_engine_lists_the_engines():
    with pytest.raises(TTSError, match=r"unknown TTS engine 'festival'. Engines: espeak, flite, piper, kokoro"):
        get_engine("festival")


@pytest.mark.parametrize("name", list(ENGINES))
def test_unknown_voice_lists_the_voices(name):
    engine = available(name)
    with pytest.raises(TTSError, match=rf"'{name}' has no voice 'zz-nobody'. Voices: .*list_voices\('{name}'\)"):
        engine.check_voice("zz-nobody")
    with pytest.raises(TTSError, match="no voice"):
        engine.synthesize(SENTENCE, "zz-nobody")


def test_bad_text_and_speed():
    engine = available("espeak")
    with pytest.raises(TTSError, match="text to synthesize is empty"):
        engine.synthesize("   ", "en-us")
    with pytest.raises(TTSError, match=r"speed 3.0 is outside \[0.5, 2.0\]"):
        engine.synthesize(SENTENCE, "en-us", 3.0)


def test_missing_program_and_package_name_the_fix(monkeypatch):
    import salad_core.tts.flite as flite
    import salad_core.tts.piper as piper

    monkeypatch.setattr(flite.shutil, "which", lambda program: None)
    assert isinstance(missing("flite"), MissingProgramError)
    assert "apt-get install flite" in str(missing("flite"))
    assert "flite" not in list_engines()
    with pytest.raises(MissingProgramError, match="apt-get install flite"):
        get_engine("flite")

    real = piper.importlib.util.find_spec
    monkeypatch.setattr(piper.importlib.util, "find_spec", lambda m, *a: None if m == "piper" else real(m, *a))
    with pytest.raises(MissingPackageError, match=r"pip install piper-tts==1.8.0"):
        get_engine("piper")


def test_voice_spec_key_round_trips():
    for spec in (VoiceSpec("espeak", "en-us+f3", 1.2), VoiceSpec("kokoro", "jf_alpha+jm_kumo@0.3", 0.9)):
        assert VoiceSpec.parse(spec.key()) == spec
    assert VoiceSpec.parse("flite:slt") == VoiceSpec("flite", "slt", 1.0)
    with pytest.raises(TTSError, match="engine:voice"):
        VoiceSpec.parse("espeak")


class CountingEngine:
    """The real espeak engine, counting how often it is asked to synthesize."""

    def __init__(self, inner):
        self.inner, self.calls, self.name = inner, 0, inner.name

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def synthesize(self, text, voice, speed=1.0):
        self.calls += 1
        return self.inner.synthesize(text, voice, speed)


def test_cache_synthesizes_each_utterance_once(tmp_path):
    engine = CountingEngine(available("espeak"))
    cache = TTSCache(tmp_path)
    spec = VoiceSpec("espeak", "en-us")
    first = synthesize(SENTENCE, spec, cache=cache, engine=engine)
    again = synthesize("  " + SENTENCE, spec, cache=cache, engine=engine)  # same text once stripped
    assert first == again and engine.calls == 1
    assert first.parent.name == first.stem[:2] and first.suffix == ".flac"
    assert list(tmp_path.rglob("*.tmp*")) == []
    audio = load_audio(first)
    assert 1.0 < len(audio) / SAMPLE_RATE < 5.0
    other = synthesize(SENTENCE, VoiceSpec("espeak", "en-us", 1.2), cache=cache, engine=engine)
    assert other != first and engine.calls == 2


def test_synthesize_many_parallel_equals_sequential(tmp_path):
    for name in ("espeak", "flite"):
        available(name)
    texts = ["Water boils at one hundred degrees.", "Who wrote Hamlet?", "", "Who wrote Hamlet?", SENTENCE]
    specs = [VoiceSpec("espeak", "en-gb-x-rp"), VoiceSpec("flite", "awb"), VoiceSpec("flite", "slt"),
             VoiceSpec("flite", "awb"), VoiceSpec("flite", "no-such-voice")]  # fmt: skip
    parallel = synthesize_many(texts, specs, workers=2, progress=False, cache=TTSCache(tmp_path / "p"))
    serial = synthesize_many(texts, specs, workers=1, progress=False, cache=TTSCache(tmp_path / "s"))
    for got in (parallel, serial):
        assert isinstance(got[2], TTSError) and "empty" in str(got[2])
        assert isinstance(got[4], TTSError) and "no-such-voice" in str(got[4])
        assert got[1] == got[3]  # one synthesis for the duplicate
    for p, s in zip(parallel[:2] + parallel[3:4], serial[:2] + serial[3:4]):
        assert p.name == s.name
        np.testing.assert_array_equal(load_audio(p), load_audio(s))  # espeak and flite are deterministic
    stamps = [p.stat().st_mtime_ns for p in parallel[:2]]
    again = synthesize_many(texts[:2], specs[:2], workers=2, progress=False, cache=TTSCache(tmp_path / "p"))
    assert again == parallel[:2] and [p.stat().st_mtime_ns for p in again] == stamps


def test_synthesize_many_checks_spec_count(tmp_path):
    with pytest.raises(TTSError, match="2 texts but 1 voice specs"):
        synthesize_many(["a", "b"], [VoiceSpec("espeak", "en-us")], cache=TTSCache(tmp_path))


def test_batch_finishes_in_process_when_workers_cannot_start(tmp_path):
    """Under `python -` spawn cannot re-import __main__, so the pool breaks; every item must still be synthesized."""
    available("espeak")
    script = (
        "from pathlib import Path\n"
        "from salad_core.tts import TTSCache, VoiceSpec, synthesize_many\n"
        "out = synthesize_many(['Hello there.', 'Who wrote Hamlet?', 'Two plus two.'], VoiceSpec('espeak', 'en-us'),\n"
        f"                     workers=2, progress=False, cache=TTSCache(Path({str(tmp_path)!r})))\n"
        "print([type(p).__name__ for p in out])\n"
    )
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['PosixPath', 'PosixPath', 'PosixPath']"
    assert len(list(tmp_path.rglob("*.flac"))) == 3
