"""load_audio / save_audio: every bad input gets a clear AudioError, every odd one the right handling."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from salad_core.audio import SAMPLE_RATE, AudioError, load_audio, resample, save_audio


def sine(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_16k_mono_wav_loads_unchanged(tmp_path):
    x = sine(1.0, SAMPLE_RATE)
    sf.write(tmp_path / "a.wav", x, SAMPLE_RATE, subtype="FLOAT")
    out = load_audio(tmp_path / "a.wav")
    assert out.dtype == np.float32 and out.shape == (SAMPLE_RATE,)
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_corrupt_bytes_raise_with_name_and_fix():
    with pytest.raises(AudioError, match=r"uploaded audio: cannot decode.*Fix: upload a WAV, FLAC or OGG"):
        load_audio(b"RIFF\x00\x00garbage" * 50)


def test_corrupt_file_names_the_path(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio at all" * 100)
    with pytest.raises(AudioError, match="broken.wav: cannot decode"):
        load_audio(bad)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: no such file"):
        load_audio(tmp_path / "nope.wav")


def test_empty_file_is_refused(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match=r"empty.wav is empty \(0 samples\)"):
        load_audio(tmp_path / "empty.wav")


def test_zeros_are_silent(tmp_path):
    sf.write(tmp_path / "zeros.wav", np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="zeros.wav is silent"):
        load_audio(tmp_path / "zeros.wav")
    with pytest.raises(AudioError, match="my clip is silent"):
        load_audio(np.full(1000, 1e-5, np.float32), sample_rate=SAMPLE_RATE, name="my clip")


def test_stereo_is_downmixed_to_the_channel_mean(tmp_path):
    left, right = sine(0.5, SAMPLE_RATE, 440), sine(0.5, SAMPLE_RATE, 660, amp=0.2)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([left, right], axis=1), SAMPLE_RATE, format="FLAC")
    out = load_audio(buffer.getvalue())
    assert out.shape == (SAMPLE_RATE // 2,)
    np.testing.assert_allclose(out, (left + right) / 2, atol=2e-4)  # FLAC is 16-bit


def test_channels_first_array_is_downmixed():
    x = np.stack([sine(0.5, SAMPLE_RATE), np.zeros(SAMPLE_RATE // 2, np.float32)])  # (2, samples)
    out = load_audio(x, sample_rate=SAMPLE_RATE)
    np.testing.assert_allclose(out, x[0] / 2, atol=1e-7)


@pytest.mark.parametrize("rate", [8000, 22050, 24000, 44100])
def test_other_rates_are_resampled(tmp_path, rate):
    sf.write(tmp_path / "s.wav", sine(2.0, rate, freq=300), rate)
    out = load_audio(tmp_path / "s.wav")
    assert abs(len(out) - 2 * SAMPLE_RATE) <= 1
    # the tone survives: its spectral peak stays at 300 Hz
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(out) - 300) < 2


def test_resample_8k_exact_length():
    assert resample(sine(1.0, 8000), 8000).shape == (16000,)


def test_long_audio_is_truncated_with_a_warning(tmp_path):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "long.flac", rng.uniform(-0.3, 0.3, 180 * SAMPLE_RATE).astype(np.float32), SAMPLE_RATE)
    with pytest.warns(UserWarning, match=r"long.flac: 180.0 s long; truncated to the first 30 s"):
        out = load_audio(tmp_path / "long.flac")
    assert out.shape == (30 * SAMPLE_RATE,)
    with pytest.warns(UserWarning, match="truncated to the first 5 s"):
        assert len(load_audio(tmp_path / "long.flac", max_seconds=5)) == 5 * SAMPLE_RATE


def test_array_needs_its_rate_and_ints_are_scaled():
    with pytest.raises(AudioError, match=r"needs its sample rate.*sample_rate="):
        load_audio(sine(0.1, SAMPLE_RATE))
    pcm = (sine(0.5, SAMPLE_RATE) * 32767).astype(np.int16)
    out = load_audio(pcm, sample_rate=SAMPLE_RATE)
    assert out.dtype == np.float32
    assert abs(float(np.max(out)) - 0.5) < 1e-3


def test_nan_and_wrong_type_are_refused():
    bad = sine(0.1, SAMPLE_RATE)
    bad[3] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        load_audio(bad, sample_rate=SAMPLE_RATE)
    with pytest.raises(AudioError, match="unsupported input type list"):
        load_audio([0.1, 0.2])  # type: ignore[arg-type]


def test_save_round_trips_flac_and_wav(tmp_path):
    x = sine(0.25, SAMPLE_RATE)
    for suffix in (".flac", ".wav"):
        path = save_audio(tmp_path / f"x{suffix}", x)
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.format) == (SAMPLE_RATE, 1, suffix[1:].upper())
        np.testing.assert_allclose(load_audio(path), x, atol=1e-4)
    with pytest.raises(AudioError, match=r"unsupported suffix '.mp3'.*\.flac or \.wav"):
        save_audio(tmp_path / "x.mp3", x)
