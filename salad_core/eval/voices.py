"""Robustness to the voice: one evaluation re-speaks its items under several conditions and measures the gap in each.

SALAD (arXiv 2510.13632) evaluates with one TTS voice and notes that other voices lower accuracy. A *condition* is
one way of hearing every question:

    engine:voice[@speed][+noise<SNR dB>]    e.g. espeak:en-us@1.2, flite:slt+noise10, kokoro:jf_alpha@0.9
    recorded[+noise<SNR dB>]                the manifest's real recordings, for the items that have one

Noise is white Gaussian noise at the given SNR relative to the clip's mean power (`salad_core.audio.add_noise`),
seeded per item so every condition with noise hears the same noise pattern at its own level. `salad eval --voices`
scores the text lanes once and the lanes that hear the question (speech, cascade) once per condition; the store
keeps each condition's rows under its key (see docs/store.md), and `gap_table` lays out their metrics.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from salad_core.audio import add_noise, load_audio, save_audio
from salad_core.errors import InputError
from salad_core.eval.metrics import parse_fail_metric
from salad_core.eval.vocabulary import (
    ALL_TASKS,
    AUDIO_LANES,
    DIFFERENCES,
    LANE_ACC_METRIC,
    LANES,
    NO_CONDITION,
)
from salad_core.paths import cache_dir
from salad_core.tasks import Item
from salad_core.text import stable_hash
from salad_core.tts import TTSError, VoiceSpec, get_engine, synthesize_many
from salad_core.tts.base import check_speed

log = logging.getLogger(__name__)

RECORDED = "recorded"
RECORDING = ("recording", "manifest", 1.0)  # engine, voice, speed of a real recording in the store
# Metrics that depend on what was heard: one value per condition. The rest (text lanes) hold for every condition.
CONDITION_METRICS = (
    *(m for lane, m in LANE_ACC_METRIC.items() if lane in AUDIO_LANES),
    *(m for m, lanes in DIFFERENCES.items() if set(lanes) & set(AUDIO_LANES)),
    "cascade_wer",
    *(parse_fail_metric(lane) for lane in AUDIO_LANES),
)
TABLE_METRICS = ("gap", "speech_acc", "misalignment", "cascade_acc", "cascade_wer")
DEFAULT_SWEEP = ("flite:slt", "flite:awb", "espeak:en-us@1.2", "flite:slt+noise10")
_NOISE = re.compile(r"^(?P<base>.+)\+noise(?P<snr>-?\d+(?:\.\d+)?)$")
_FORM = "engine:voice[@speed][+noise<SNR dB>] or recorded[+noise<SNR dB>]"

Clip = tuple[np.ndarray, dict]  # 16 kHz audio, and its item_audio row (engine, voice, speed, path, ...)


@dataclass(frozen=True)
class Condition:
    """One way of hearing the questions: a TTS voice (None: the items' own recordings), optionally with noise."""

    voice: VoiceSpec | None
    snr_db: float | None = None

    @property
    def key(self) -> str:
        """Canonical name, e.g. `flite:slt@1+noise10`; `Condition.parse` reads it back."""
        base = RECORDED if self.voice is None else self.voice.key()
        return base + ("" if self.snr_db is None else f"+noise{self.snr_db:g}")

    @classmethod
    def parse(cls, text: str) -> Condition:
        text = text.strip()
        noise = _NOISE.match(text)
        if not noise and "+noise" in text:
            raise InputError(f"voice condition '{text}': '+noise' needs the SNR in dB after it. "
                             "Fix: write e.g. 'flite:slt+noise10'.")
        base, snr = (noise["base"], float(noise["snr"])) if noise else (text, None)
        if base == RECORDED:
            return cls(None, snr)
        try:
            spec = VoiceSpec.parse(base)
        except TTSError:
            raise InputError(f"voice condition '{text}' is not {_FORM}. Fix: write e.g. 'espeak:en-us@1.2', "
                             "'flite:slt+noise10' or 'recorded' (`salad voices` lists the voices).") from None
        try:
            check_speed(spec.speed)
        except TTSError as err:
            raise InputError(f"voice condition '{text}': {err}") from None
        return cls(spec, snr)


def parse_conditions(texts: Sequence[str]) -> list[Condition]:
    """Conditions in the order given (the first is the run's reference voice); a repeated one is an error."""
    conditions = [Condition.parse(t) for t in texts]
    keys = [c.key for c in conditions]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if not conditions or repeated:
        problem = f"lists {', '.join(repeated)} twice" if repeated else "is empty"
        raise InputError(f"--voices {problem}. Fix: give each condition once, comma-separated, e.g. "
                         f"--voices {','.join(DEFAULT_SWEEP)}.")
    return conditions


def check_conditions(conditions: Sequence[Condition], items: Sequence[Item]) -> None:
    """Fail before any model loads: every voice exists on its engine, and `recorded` has recordings to play."""
    for condition in conditions:
        if condition.voice is None:
            if not any(item.audio for item in items):
                raise InputError(f"voice condition '{condition.key}': none of the {len(items)} items has a recording. "
                                 "Fix: add --manifest with `audio` paths (docs/manifest.md), or drop 'recorded'.")
            continue
        try:
            get_engine(condition.voice.engine).check_voice(condition.voice.voice)
        except TTSError as err:
            raise TTSError(f"voice condition '{condition.key}': {err} `salad voices` lists every engine's voices.") \
                from None


# -- audio per condition ---------------------------------------------------------------------------------------


def load_clip(item: Item, source: str | Path | Exception, engine: str, voice: str, speed: float) -> Clip | Exception:
    """An item's audio from a file (or the error that stopped its synthesis), with its item_audio row."""
    try:
        if isinstance(source, Exception):
            raise source
        audio = load_audio(source)
    except Exception as err:  # noqa: BLE001 - one bad clip must not stop the batch
        return err
    return audio, {"engine": engine, "voice": voice, "speed": speed, "path": str(source), "text": item.question,
                   "duration_s": len(audio) / 16000, "sample_rate": 16000}


def with_noise(clip: Clip, snr_db: float, item_id: str) -> Clip:
    """The clip with white noise at `snr_db`, saved (content-addressed) so the dashboard can play what was heard."""
    audio, info = clip
    noisy = add_noise(audio, snr_db, seed=stable_hash("noise", item_id) % 2**32)
    return noisy, {**info, "path": str(_saved(noisy)), "snr_db": float(snr_db)}


def _saved(audio: np.ndarray) -> Path:
    digest = hashlib.sha256(audio.tobytes()).hexdigest()
    path = cache_dir("noisy") / digest[:2] / f"{digest}.flac"
    if not path.exists():
        tmp = path.with_name(f".{digest}.{uuid.uuid4().hex[:8]}.tmp.flac")
        save_audio(tmp, audio)
        os.replace(tmp, path)  # readers never see half a file
    return path


def render(items: Sequence[Item], condition: Condition) -> dict[str, Clip | Exception]:
    """Each item's audio under `condition`, by item_id; a failed one holds its error. A TTS condition speaks every
    item (those with recordings too, so conditions compare the same items); `recorded` leaves out items without one."""
    if condition.voice is None:
        sources = {i.item_id: i.audio for i in items if i.audio}
        engine, voice, speed = RECORDING
    else:
        paths = synthesize_many([i.question for i in items], condition.voice)
        sources = dict(zip((i.item_id for i in items), paths))
        engine, voice, speed = condition.voice.engine, condition.voice.voice, condition.voice.speed
    out: dict[str, Clip | Exception] = {}
    for item in items:
        if item.item_id not in sources:
            continue
        clip = load_clip(item, sources[item.item_id], engine, voice, speed)
        noisy = condition.snr_db is not None and not isinstance(clip, Exception)
        out[item.item_id] = with_noise(clip, condition.snr_db, item.item_id) if noisy else clip
    if len(out) < len(items):
        log.info("condition %s: %d of %d items have a recording", condition.key, len(out), len(items))
    return out


# -- the per-condition gap table -------------------------------------------------------------------------------


def gap_table(metrics: pd.DataFrame, order: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (condition, task) of a sweep's metrics (`Store.condition_metrics`): n, then each of
    TABLE_METRICS with its 95 % interval (`<metric>_ci_low`, `<metric>_ci_high`), as fractions. Conditions in
    `order` (the sweep's), any others after them; tasks alphabetically, all tasks last."""
    rows = metrics[metrics["condition"].ne(NO_CONDITION) & metrics["metric"].isin(TABLE_METRICS)
                   & metrics["step"].isna()]
    if rows.empty:
        return pd.DataFrame(columns=["condition", "task", "n"])
    index = ["condition", "task"]
    wide = rows.pivot(index=index, columns="metric", values=["value", "ci_low", "ci_high"])
    table = pd.DataFrame({"n": rows.groupby(index)["n"].max()})
    for metric in (m for m in TABLE_METRICS if m in wide["value"]):
        table[metric] = wide["value"][metric]
        table[f"{metric}_ci_low"] = wide["ci_low"][metric]
        table[f"{metric}_ci_high"] = wide["ci_high"][metric]
    rank = {c: i for i, c in enumerate(order)}
    table = table.reset_index().assign(_rank=lambda t: [rank.get(c, len(rank)) for c in t["condition"]],
                                       _all=lambda t: t["task"].eq(ALL_TASKS))
    return table.sort_values(["_rank", "condition", "_all", "task"]).drop(columns=["_rank", "_all"]) \
        .reset_index(drop=True)


def sweep_command(config: dict, store_path: str | None = None, voices: Sequence[str] = DEFAULT_SWEEP) -> str:
    """The `salad eval --voices` command that re-runs an evaluation (its model, tasks, limit, manifest and lanes)
    under several voices; `recorded` is added when the run had a manifest."""
    args = ["salad", "eval"]
    if config.get("model_path"):
        args += ["--model", str(config["model_path"])]
    else:
        args += ["--preset", str(config.get("preset") or "smol")]
    for flag, key in (("--llm", "llm"), ("--encoder", "encoder"), ("--limit", "limit"), ("--manifest", "manifest")):
        if config.get(key):
            args += [flag, str(config[key])]
    if config.get("tasks"):
        args += ["--tasks", ",".join(config["tasks"])]
    if config.get("lanes") and list(config["lanes"]) != list(LANES):
        args += ["--lanes", ",".join(config["lanes"])]
    args += ["--voices", ",".join([*voices, *([RECORDED] if config.get("manifest") else [])])]
    if store_path:
        args += ["--db", str(store_path)]
    return shlex.join(args)
