"""The later stages of a selection round, after the pool is clustered (select/pool_stages.py, select/assign.py):
each a function of its stage folder (select/stages.py), so that an interrupted round resumes from its finished
stages.

    probes      each cluster's lowest-ranked documents, spoken in the first voice (a clip bank in the folder)
    scores      M(c) by the model actor and the CER by the ASR actor on the probes (select/probe_actors.py)
    selected    the documents drawn by P_target (or uniformly), spoken batch by batch until their audio reaches
                the budget; `speech_docs.jsonl` is what `salad train --stage 2` reads
    map         a seeded sample of the pool placed on the UMAP cluster map
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from salad_core.clips import read_jsonl, write_jsonl
from salad_core.select.assign import read_members
from salad_core.select.draws import (
    DRAW_SALT,
    PROBE_SALT,
    WHOLE_POOL,
    cluster_draws,
    in_draw_order,
    lowest_ranked,
)
from salad_core.select.ray_runtime import Resources
from salad_core.select.speech_actors import speak_on_ray
from salad_core.select.stages import read_shards

log = logging.getLogger(__name__)

SELECTED_DOCS = "speech_docs.jsonl"
PROBES = "probes.jsonl"
MAP_SALT = 4


@dataclass(frozen=True)
class Speech:
    """How a round speaks its documents."""
    voices: tuple[str, ...]
    speed: float
    seed: int
    speech_words: tuple[int, int]
    text_words: tuple[int, int]
    encoder: str

    def speak(self, table: pa.Table, folder: Path, resources: Resources, role: str, voices=None) -> list[dict | None]:
        return speak_on_ray(table, folder, resources, role=role, voices=voices or self.voices, speed=self.speed,
                            seed=self.seed, speech_words=self.speech_words, text_words=self.text_words,
                            encoder=self.encoder)


def _rows(table: pa.Table, docs: list[dict | None]) -> list[dict]:
    return [{"key": key, "cluster": cluster, "domain": domain, "text": text, "doc": doc}
            for key, cluster, domain, text, doc in zip(table["key"].to_pylist(), table["cluster"].to_pylist(),
                                                        table["domain"].to_pylist(), table["text"].to_pylist(), docs)]


def probes_stage(clusters: Path, k: int, per_cluster: int, seed: int, speech: Speech, resources: Resources):
    """Each cluster's `per_cluster` lowest-ranked documents, spoken in the round's first voice alone, so that every
    cluster's M(c) and CER are measured alike."""

    def stage(folder: Path) -> dict:
        drawn = lowest_ranked(read_members(clusters), {c: per_cluster for c in range(k)}, np.zeros(0, np.int64), seed,
                              PROBE_SALT)
        docs = speech.speak(drawn, folder, resources, "probe", voices=speech.voices[:1])
        write_jsonl(folder / PROBES, _rows(drawn, docs))
        return {"probes": drawn.num_rows, "spoken": sum(d is not None for d in docs)}

    return stage


def scores_stage(probes: Path, encoder: str, model_dir: Path, asr: str, resources: Resources):
    """M and distillation sums, and the CER, per cluster of the spoken probes."""

    def stage(folder: Path) -> dict:
        from salad_core.select.probe_actors import score_on_ray

        sums, cer = score_on_ray(read_jsonl(probes / PROBES), probes, encoder, model_dir, asr, resources)
        return {"sums": {str(c): s for c, s in sums.items()}, "cer": {str(c): x for c, x in cer.items()},
                "model": str(model_dir), "asr": asr}

    return stage


def drawn_in_order(members, p_target: np.ndarray | None, capacity: np.ndarray, n: int, exclude: np.ndarray,
                   seed: int) -> pa.Table:
    """The first `n` documents the round selects, in order: two-level sampling by `p_target`, or by rank from the
    whole pool when it is None (the random strategy)."""
    if p_target is None:
        return lowest_ranked(members, {WHOLE_POOL: n}, exclude, seed, DRAW_SALT)
    draws = cluster_draws(p_target, capacity, n, seed)
    need = {int(c): int(count) for c, count in zip(*np.unique(draws, return_counts=True))}
    return in_draw_order(lowest_ranked(members, need, exclude, seed, DRAW_SALT), draws)


def selected_stage(clusters: Path, p_target: np.ndarray | None, capacity: np.ndarray, exclude: np.ndarray,
                   budget_s: float, doc_seconds: float, seed: int, speech: Speech, resources: Resources):
    """Documents in draw order, spoken a batch at a time until their audio reaches `budget_s` (the last one may
    cross it); a draw of more documents starts with the draw of fewer, so each batch extends the last."""

    def stage(folder: Path) -> dict:
        members = read_members(clusters)
        selected, spent, spoken, failed, drawn, batches = [], 0.0, set(), 0, 0, 0
        while spent < budget_s:
            drawn += max(8, math.ceil((budget_s - spent) / max(doc_seconds, 0.1) * 1.1))
            order = drawn_in_order(members, p_target, capacity, drawn, exclude, seed)
            fresh = order.filter(pa.array([key not in spoken for key in order["key"].to_pylist()]))
            if fresh.num_rows == 0:
                log.warning("the pool ran out of documents after %.0f of %.0f s", spent, budget_s)
                break
            docs = speech.speak(fresh, folder, resources, "selected")
            batches += 1
            for row in _rows(fresh, docs):
                spoken.add(row["key"])
                failed += row["doc"] is None
                if row["doc"] is not None and spent < budget_s:
                    selected.append(row)
                    spent += row["doc"]["seconds"]
        write_jsonl(folder / SELECTED_DOCS, [{**r.pop("doc"), **r} for r in selected])
        return {"selected": len(selected), "selected_s": spent, "drawn": drawn, "batches": batches,
                "spoken": len(spoken), "failed": failed}

    return stage


def map_stage(embeddings: Path, rule_folder: Path, points: int, seed: int):
    """`points` documents of the pool, drawn by seeded rank, with their cluster and UMAP x/y (map.parquet)."""

    def stage(folder: Path) -> dict:
        import pyarrow.parquet as pq

        from salad_core.maps import MIN_POINTS, project
        from salad_core.select.assign import load_rule, vectors

        if points == 0:
            return {"points": 0, "projected": False}
        sample = lowest_ranked(read_shards(embeddings), {WHOLE_POOL: points}, np.zeros(0, np.int64),
                               seed, MAP_SALT)
        x = vectors(sample)
        xy = project(x, seed) if len(x) >= MIN_POINTS else np.full((len(x), 2), np.nan)
        pq.write_table(sample.select(["key", "text", "domain"]).append_column(
            "cluster", pa.array(load_rule(rule_folder).labels(sample), pa.int32()))
            .append_column("x", pa.array(xy[:, 0])).append_column("y", pa.array(xy[:, 1])), folder / "map.parquet")
        return {"points": len(x), "projected": len(x) >= MIN_POINTS}

    return stage
