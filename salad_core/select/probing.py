"""Scoring clusters: the Stage I model's misalignment M(c) on a small spoken probe set, and its intelligibility.

Two scores per cluster, both token-weighted means over the probe documents' shared text positions (nats/token):

    m        M restricted to the cluster:  KL( P(. | text) || P(. | speech) )       (eval.divergence)
    distill  the distillation loss there:  KL( Q(. | text) || P(. | speech) )       Q = the original LLM

The paper leaves open which one it used; `--score` picks the one the target distribution uses, both are recorded.
A cluster whose probe speech the ASR cannot read back (character error rate above `cer_max`) is filtered out:
training on unintelligible synthetic speech would teach noise.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from salad_core.audio import SAMPLE_RATE
from salad_core.documents import SpeechDoc
from salad_core.eval.probes import document_divergences
from salad_core.progress import Progress


@dataclass
class ClusterScore:
    m: float
    distill: float
    tokens: int
    cer: float
    n_probes: int


@torch.no_grad()
def misalignment(model, bank, docs: list[dict], clusters: list[int], progress: Progress | None = None) -> dict[int, dict]:
    """Per cluster: summed M and distillation KL, and their token count, over its probe documents."""
    probes = [SpeechDoc.from_record({**doc, "domain": str(cluster)}) for doc, cluster in zip(docs, clusters)]
    frames = lambda ds: bank.features([s.clip_id for d in ds for s in d.spans if s.clip_id], model.encoder)
    sums: dict[int, dict] = defaultdict(lambda: {"m": 0.0, "distill": 0.0, "tokens": 0})
    for part, cluster in zip(document_divergences(model, probes, frames, progress), clusters):
        sums[cluster]["m"] += part.m_sum
        sums[cluster]["distill"] += part.d_sum
        sums[cluster]["tokens"] += part.m_tokens
    return sums


def intelligibility(transcriber, bank, docs: list[dict], clusters: list[int], max_seconds: float = 20.0,
                    progress: Progress | None = None) -> dict[int, float]:
    """Character error rate of the ASR per cluster, on its first probe clips (at most `max_seconds` of audio, gaps
    included, so that they fit one Whisper window) read back as one utterance: one ASR call per cluster. (Clips one
    by one are slower and worse: a fragment of two words has no context.)"""
    from salad_core.asr import char_error_rate

    gap_s = 0.3
    clips: dict[int, list[str]] = defaultdict(list)
    seconds: dict[int, float] = defaultdict(float)
    for doc, cluster in zip(docs, clusters):
        for _, clip in doc["spans"]:
            length = bank.clip(clip)["seconds"] + gap_s if clip else 0.0
            if clip and (not clips[cluster] or seconds[cluster] + length <= max_seconds):
                clips[cluster].append(clip)
                seconds[cluster] += length
    gap = np.zeros(int(gap_s * SAMPLE_RATE), dtype=np.float32)
    out = {}
    for cluster, ids in clips.items():
        audio = np.concatenate([part for clip in ids for part in (bank.audio(clip), gap)])
        text = " ".join(bank.clip(c)["text"] for c in ids)
        # the texts spell numbers out ("twenty six"); Whisper writes digits
        out[cluster] = char_error_rate(text, transcriber.transcribe(audio), spell_numbers=True)
        if progress is not None:
            progress.update(1)
    return out


def cluster_scores(k: int, sums: dict[int, dict], cer: dict[int, float], probes_per_cluster: np.ndarray) -> list[ClusterScore]:
    out = []
    for c in range(k):
        s = sums.get(c, {"m": 0.0, "distill": 0.0, "tokens": 0})
        n = s["tokens"]
        out.append(ClusterScore(s["m"] / n if n else float("nan"), s["distill"] / n if n else float("nan"), n,
                                cer.get(c, float("nan")), int(probes_per_cluster[c])))
    return out
