"""The frozen Whisper encoder: CTranslate2 reading and conversion, loading by name, the two context modes.

Reference outputs come from CTranslate2 itself (faster-whisper's encoder and ctranslate2's own quantizer), and the
inputs are real human speech (tests/fixtures/speech, see ATTRIBUTION.md there).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperModel

from salad_core.assets import AssetError, whisper_ct2_dir
from salad_core.model import encoder as encoder_mod
from salad_core.model.encoder import AudioInputError, SpeechEncoder
from salad_core.model.whisper_ct2 import read_ct2_variables, whisper_config_from_ct2

FIXTURES = Path(__file__).parent / "fixtures" / "speech"
LONG_CLIP = "sense_and_sensibility_01_austen_64kb-0890"


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    out = {}
    for wav in sorted(FIXTURES.glob("*.wav")):
        audio, rate = sf.read(wav, dtype="float32")
        assert rate == 16_000 and audio.ndim == 1 and (FIXTURES / f"{wav.stem}.txt").is_file()
        out[wav.stem] = audio
    assert len(out) >= 3
    return out


@pytest.fixture(scope="module")
def base() -> SpeechEncoder:
    return SpeechEncoder.load("whisper-base")


@pytest.fixture(scope="module")
def base_30s_frames(base: SpeechEncoder, clips) -> dict[str, torch.Tensor]:
    exact = SpeechEncoder(base.encoder, base.name, context="30s")
    return dict(zip(clips, exact.encode(list(clips.values()))))


@pytest.fixture(scope="module")
def base_clip_frames(base: SpeechEncoder, clips) -> dict[str, torch.Tensor]:
    return dict(zip(clips, base.encode(list(clips.values()))))


# ---------------------------------------------------------------------------------------------------------------
# CTranslate2 reading


def test_reads_ct2_whisper_tiny_variables_and_config():
    variables = read_ct2_variables(whisper_ct2_dir("whisper-tiny.en") / "model.bin")
    assert variables["encoder/conv1/weight"].shape == (384, 80, 3)
    assert variables["encoder/position_encodings/encodings"].shape == (1500, 384)
    assert all(v.dtype == np.float32 for v in variables.values())  # fp16 file, returned as float32
    # the alias decoder/projection/weight -> decoder/embeddings/weight is resolved
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    # Whisper's sinusoidal table: position 0 is sin(0)=0 on the first half and cos(0)=1 on the second
    np.testing.assert_allclose(variables["encoder/position_encodings/encodings"][0], [0] * 192 + [1] * 192, atol=1e-3)
    config = whisper_config_from_ct2(variables)
    assert (config.d_model, config.encoder_layers, config.encoder_attention_heads) == (384, 4, 6)
    assert (config.encoder_ffn_dim, config.num_mel_bins, config.max_source_positions) == (1536, 80, 1500)
    assert (config.vocab_size, config.decoder_layers) == (51864, 4)


def _save_with_ctranslate2(folder: Path, weight: np.ndarray, conv: np.ndarray, quantization: str) -> None:
    from ctranslate2.specs import common_spec, model_spec

    class TinySpec(model_spec.ModelSpec):
        def __init__(self):
            super().__init__()
            self.lin, self.conv = common_spec.LinearSpec(), common_spec.Conv1DSpec()

        @property
        def name(self):
            return "TinySpec"

    spec = TinySpec()  # copies: ctranslate2's quantizer scales float32 arrays in place
    spec.lin.weight, spec.lin.bias = weight.copy(), np.zeros(weight.shape[0], np.float32)
    spec.conv.weight, spec.conv.bias = conv.copy(), np.zeros(conv.shape[0], np.float32)
    spec.validate()
    spec.optimize(quantization)
    folder.mkdir()
    spec.save(str(folder))


@pytest.mark.parametrize("quantization", ["int8", "int16", "float16"])
def test_dequantizes_what_ctranslate2_quantized(tmp_path, quantization):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((16, 8)).astype(np.float32) * np.linspace(0.1, 3, 16, dtype=np.float32)[:, None]
    conv = rng.standard_normal((6, 4, 3)).astype(np.float32)
    _save_with_ctranslate2(tmp_path / "m", weight, conv, quantization)
    got = read_ct2_variables(tmp_path / "m" / "model.bin")
    assert not any(name.endswith("_scale") for name in got)
    for name, original in {"lin/weight": weight, "conv/weight": conv}.items():
        rows = original.reshape(original.shape[0], -1)
        if quantization == "int8":  # one scale per output row: error at most half a step, amax/127/2
            step = (np.abs(rows).max(axis=1) / 127).reshape((-1,) + (1,) * (original.ndim - 1))
            assert np.all(np.abs(got[name] - original) <= step / 2 + 1e-6)
            assert np.abs(got[name] - original).max() > 0  # really quantized
        elif quantization == "int16":  # one scale for the tensor: 2**10 steps over its amax
            assert np.abs(got[name] - original).max() <= np.abs(original).max() / 2**10 / 2 + 1e-6
        else:
            np.testing.assert_array_equal(got[name], original.astype(np.float16).astype(np.float32))


def test_truncated_model_bin_is_a_clear_error(tmp_path):
    source = whisper_ct2_dir("whisper-tiny.en") / "model.bin"
    with open(source, "rb") as f:
        (tmp_path / "model.bin").write_bytes(f.read(100_000))
    with pytest.raises(AssetError, match="truncated"):
        read_ct2_variables(tmp_path / "model.bin")


# ---------------------------------------------------------------------------------------------------------------
# Converted encoder == CTranslate2's encoder


@pytest.mark.slow
@pytest.mark.parametrize("name", ["whisper-base", "whisper-tiny.en"])
def test_converted_encoder_matches_faster_whisper(name, clips):
    """Same fp16 weights, both run in float32: differences are only summation order (measured: base 3.9e-4 abs,
    1.6e-5 relative to the output's max; tiny.en 2.0e-5 abs). 1e-3 relative leaves room for other BLAS kernels and
    still catches any mapping slip (a swapped or untransposed projection, a lost bias: errors of order 1)."""
    import ctranslate2
    from faster_whisper import WhisperModel as FasterWhisper
    from faster_whisper.feature_extractor import FeatureExtractor

    ct2_dir = whisper_ct2_dir(name)
    reference_model = FasterWhisper(str(ct2_dir), device="cpu", compute_type="float32")
    features = FeatureExtractor(feature_size=reference_model.model.n_mels)(clips[LONG_CLIP], padding=480_000)
    features = np.ascontiguousarray(features[None, :, :3000])
    reference = np.array(reference_model.model.encode(ctranslate2.StorageView.from_array(features), to_cpu=True))

    ours = SpeechEncoder.load(name).encoder(torch.from_numpy(features)).last_hidden_state.detach().numpy()
    assert ours.shape == reference.shape == (1, 1500, {"whisper-base": 512, "whisper-tiny.en": 384}[name])
    assert np.abs(ours - reference).max() <= 1e-3 * np.abs(reference).max()
    assert _cosine(torch.from_numpy(ours[0]), torch.from_numpy(reference[0])).min() > 0.9999


@pytest.mark.slow
def test_log_mel_matches_faster_whisper(base, clips):
    from faster_whisper.feature_extractor import FeatureExtractor

    audio = clips[LONG_CLIP]
    ours = base.features(np.pad(audio, (0, 480_000 - audio.size))).numpy()
    reference = FeatureExtractor(feature_size=80)(audio, padding=480_000)[:, :3000]
    assert ours.shape == (80, 3000)
    assert np.abs(ours - reference).max() < 1e-4  # measured 1.3e-5 (float32 FFT vs numpy FFT)


# ---------------------------------------------------------------------------------------------------------------
# Loading by name


@pytest.mark.slow
def test_frozen_and_sized(base):
    assert (base.hidden_size, base.frame_rate, base.n_mels) == (512, 50.0, 80)
    assert all(not p.requires_grad for p in base.parameters())
    parent = torch.nn.Sequential(base)
    parent.train()
    assert not base.training and not base.encoder.training


@pytest.mark.slow
def test_conversion_runs_once_and_ct2_folders_load(tmp_path, monkeypatch):
    monkeypatch.setenv("SALAD_DATA", str(tmp_path))
    monkeypatch.setenv("SALAD_CACHE", str(tmp_path / "cache"))
    calls = []
    real_convert = encoder_mod.whisper_encoder_from_ct2
    monkeypatch.setattr(encoder_mod, "whisper_encoder_from_ct2", lambda folder: calls.append(folder) or real_convert(folder))

    first = SpeechEncoder.load("whisper-tiny.en")
    assert len(calls) == 1 and Path(first.source).parent == tmp_path / "cache" / "encoders"
    assert {"config.json", "model.safetensors"} <= {p.name for p in Path(first.source).iterdir()}
    second = SpeechEncoder.load("openai/whisper-tiny.en")
    assert len(calls) == 1 and second.source == first.source

    from_folder = SpeechEncoder.load(str(whisper_ct2_dir("whisper-tiny.en")))  # a plain CTranslate2 folder
    assert len(calls) == 2
    for key, value in first.encoder.state_dict().items():
        assert torch.equal(value, from_folder.encoder.state_dict()[key]), key


@pytest.mark.parametrize("model_class", [WhisperModel, WhisperForConditionalGeneration])
def test_transformers_folder_loads_its_encoder(tmp_path, clips, model_class):
    config = WhisperConfig(d_model=64, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=128,
                           decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=128, vocab_size=100,
                           max_target_positions=32, num_mel_bins=80, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, decoder_start_token_id=3)
    torch.manual_seed(0)
    full = model_class(config)
    full.save_pretrained(tmp_path)
    loaded = SpeechEncoder.load(str(tmp_path))
    expected = full.get_encoder().state_dict()
    assert loaded.encoder.state_dict().keys() == expected.keys()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.encoder.state_dict().items())
    audio = clips[LONG_CLIP]
    assert loaded.encode([audio])[0].shape == (math.ceil(audio.size / 320), 64)


@pytest.mark.parametrize("name", ["openai/whisper-small", "no-such-org/no-such-encoder"])
def test_unavailable_hub_id_fails_fast_and_says_why(monkeypatch, name):
    monkeypatch.delenv("SALAD_ALLOW_DOWNLOAD", raising=False)
    start = time.perf_counter()
    with pytest.raises(AssetError) as err:
        SpeechEncoder.load(name)
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert name in message and "offline" in message
    assert f"huggingface-cli download {name}" in message and "whisper-base" in message


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(AssetError, match="does not exist"):
        SpeechEncoder.load(str(tmp_path / "nowhere"))
    with pytest.raises(AssetError, match="neither a CTranslate2 model.bin nor a transformers config.json"):
        SpeechEncoder.load(str(tmp_path))


# ---------------------------------------------------------------------------------------------------------------
# Context modes


@pytest.mark.slow
def test_sliced_forward_equals_stock_forward_on_30s(base, clips, base_30s_frames):
    """Our forward (conv, sliced positions, layers, norm) fed a full 30-s window must be the stock forward."""
    audio = clips[LONG_CLIP]
    features = base.features(np.pad(audio, (0, 480_000 - audio.size)))[None]
    with torch.no_grad():
        ours = base(features)[0]
    stock = base_30s_frames[LONG_CLIP]
    assert torch.allclose(ours[: stock.shape[0]], stock, atol=1e-4)  # measured 0.0 unbatched; stock ran batched


@pytest.mark.slow
def test_clip_mode_frames_and_agreement_with_30s(clips, base_clip_frames, base_30s_frames):
    """Measured with whisper-base, pad 1 s: mean per-frame cosine 0.941 (goforward) to 0.982 (0890), medians
    0.959-0.991; single outlier frames fall near 0 in both directions (Whisper's high-norm frames move)."""
    frames = base_clip_frames
    for name, audio in clips.items():
        assert frames[name].shape == base_30s_frames[name].shape == (math.ceil(audio.size / 320), 512)
        cosine = _cosine(frames[name], base_30s_frames[name])
        assert cosine.mean() > 0.92 and cosine.median() > 0.95, name
    assert _cosine(frames[LONG_CLIP], base_30s_frames[LONG_CLIP]).mean() > 0.97
    # and the modes are not trivially identical: the padding context matters
    assert not torch.allclose(frames[LONG_CLIP], base_30s_frames[LONG_CLIP], atol=1e-2)


@pytest.mark.slow
def test_more_trailing_silence_moves_clip_mode_towards_30s(base, clips, base_30s_frames):
    audio = clips[LONG_CLIP]
    agreement = []
    for pad in (0.0, 5.0):
        padded = SpeechEncoder(base.encoder, base.name, pad_seconds=pad)
        agreement.append(_cosine(padded.encode([audio])[0], base_30s_frames[LONG_CLIP]).mean())
    assert agreement[0] < agreement[1]  # measured 0.958 -> 0.991


@pytest.mark.slow
def test_batching_does_not_change_a_clip(base, clips, base_clip_frames):
    for name, audio in clips.items():
        alone, batched = base.encode([audio])[0], base_clip_frames[name]
        assert (alone - batched).abs().max() < 2e-4  # measured 3.3e-5: float noise, masks make them equal


@pytest.mark.slow
def test_bad_clips_are_named_or_skipped(base, clips):
    good = clips[LONG_CLIP]
    bad = [np.stack([good, good], axis=1), np.zeros(0, np.float32), (good * 32767).astype(np.int16),
           np.full(1600, np.nan, np.float32), np.zeros(31 * 16_000, np.float32)]
    with pytest.raises(AudioInputError) as err:
        base.encode([good] + bad)
    message = str(err.value)
    assert "5 of 6 clips" in message
    for index, hint in enumerate(["mono", "empty", "int16", "NaN", "30 s"], start=1):
        assert f"clip {index} " in message and hint in message
    result = base.encode([good] + bad, skip_bad=True)
    assert result[0].shape == (math.ceil(good.size / 320), 512) and result[1:] == [None] * 5


@pytest.mark.slow
def test_tensor_input_and_too_short_features(base, clips, base_clip_frames):
    audio = clips[LONG_CLIP]
    assert torch.allclose(base.encode([torch.from_numpy(audio)])[0], base_clip_frames[LONG_CLIP], atol=2e-4)
    assert base.features(audio).shape == (80, audio.size // 160)
    with pytest.raises(AudioInputError, match="more than 200 samples"):
        base.features(np.zeros(100, np.float32))
