"""An utterance's audio as every source kind points at it: a file or a stretch of one, bytes, an array; and the
errors that name the row and the fix."""

import io

import numpy as np
import pytest
import soundfile as sf

from salad_core.audio import AudioError
from salad_core.speech_data.utterance import AudioRef, Utterance


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_a_stretch_of_a_file_at_another_rate_comes_back_at_16k(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(3.0, 48000), 48000)
    audio = Utterance("u1", "d", 0, "hello", AudioRef(str(path), offset=1.0, duration=1.5)).load()
    assert audio.dtype == np.float32 and audio.shape == (24000,)


def test_bytes_and_arrays_load_alike(tmp_path):
    buffer = io.BytesIO()
    sf.write(buffer, tone(1.0, 16000), 16000, format="WAV")
    from_bytes = AudioRef(data=buffer.getvalue()).load("row 3")
    from_array = AudioRef(array=tone(1.0, 8000), sample_rate=8000).load("row 4")
    assert from_bytes.shape == (16000,) and from_array.shape == (16000,)


@pytest.mark.parametrize("ref, says", [
    (AudioRef(path="/nowhere/a.flac"), "no audio file /nowhere/a.flac"),
    (AudioRef(), "has no audio"),
])
def test_missing_audio_names_the_row(ref, says):
    with pytest.raises(AudioError, match=f"utterance u7: .*{says}.*Fix"):
        Utterance("u7", "d", 0, "text", ref).load()


def test_a_rate_other_than_the_declared_one_is_refused(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(1.0, 8000), 8000)
    with pytest.raises(AudioError, match="row 2: the audio is at 8000 Hz where its source declares 16000 Hz"):
        AudioRef(str(path), sample_rate=16000).load("row 2")


def test_an_offset_past_the_end_is_refused(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(1.0, 16000), 16000)
    with pytest.raises(AudioError, match="stretch at 5 s"):
        AudioRef(str(path), offset=5.0, duration=1.0).load("row 1")
