"""A selection round's cluster scores on Ray: the probes' misalignment M(c) by a model actor, and their
intelligibility by an ASR actor (select/probing.py measures both; these actors run it where Ray puts them).

Both take rows of whole clusters (cluster, docs: its spoken probe documents as JSON), so that a cluster's M(c) and
its one ASR call come from one actor. The model actor takes a GPU where Ray has one; the ASR (faster-whisper, int8)
runs on a CPU.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa

from salad_core.select.ray_runtime import Resources

BANK_FIX = "rerun the round (salad select --resume ROUND_ID redoes its unfinished stages)."


def _bank(folder: str, encoder: str):
    from salad_core.clips import ClipBank

    return ClipBank(Path(folder), encoder, f"probe speech at {folder}", BANK_FIX)


def _unpack(table: pa.Table) -> tuple[list[dict], list[int]]:
    docs, clusters = [], []
    for cluster, packed in zip(table["cluster"].to_pylist(), table["docs"].to_pylist()):
        for doc in json.loads(packed):
            docs.append(doc)
            clusters.append(cluster)
    return docs, clusters


class ScoreProbes:
    """Ray actor: per cluster of the batch, the summed M and distillation KL over its probes, and their tokens."""

    def __init__(self, folder: str, encoder: str, model_dir: str):
        import torch

        import salad_core.world  # noqa: F401  (registers the worlds' LMs: a world model's LLM names one)
        from salad_core.model.modeling import SaladModel

        self.bank = _bank(folder, encoder)
        self.model = SaladModel.from_pretrained(model_dir, device_map="cuda" if torch.cuda.is_available() else None)

    def __call__(self, table: pa.Table) -> pa.Table:
        from salad_core.select.probing import misalignment

        docs, clusters = _unpack(table)
        sums = misalignment(self.model, self.bank, docs, clusters)
        rows = [{"cluster": c, **sums[c]} for c in sorted(set(clusters)) if c in sums]
        return pa.Table.from_pylist(rows, schema=pa.schema([("cluster", pa.int64()), ("m", pa.float64()),
                                                            ("distill", pa.float64()), ("tokens", pa.int64())]))


class ReadBackProbes:
    """Ray actor: per cluster of the batch, the ASR's character error rate on its probe speech."""

    def __init__(self, folder: str, encoder: str, asr: str):
        from salad_core.asr import Transcriber

        self.bank = _bank(folder, encoder)
        self.transcriber = Transcriber(asr, beam_size=1, threads=1)

    def __call__(self, table: pa.Table) -> pa.Table:
        from salad_core.select.probing import intelligibility

        docs, clusters = _unpack(table)
        cer = intelligibility(self.transcriber, self.bank, docs, clusters)
        return pa.table({"cluster": pa.array(list(cer), pa.int64()), "cer": pa.array(list(cer.values()), pa.float64())})


def score_on_ray(probes: list[dict], folder: Path, encoder: str, model_dir: Path, asr: str,
                 resources: Resources) -> tuple[dict[int, dict], dict[int, float]]:
    """(M sums per cluster, CER per cluster) of the spoken `probes` ({cluster, doc} rows, doc None where its
    speech failed) whose clips lie in the bank at `folder`."""
    rows = _cluster_rows(probes)
    if not rows:
        return {}, {}
    shared = {"folder": str(folder), "encoder": encoder}
    (model_actors, gpus), asr_actors = scoring_actors(resources)
    # the two pools run at once: each actor spends most of a small round loading its model
    with ThreadPoolExecutor(2) as threads:
        scored = threads.submit(_run, rows, ScoreProbes, {**shared, "model_dir": str(model_dir)}, model_actors, gpus)
        heard = threads.submit(_run, rows, ReadBackProbes, {**shared, "asr": asr}, asr_actors, 0.0)
        sums = _sums(scored.result())
        cer = {row["cluster"]: row["cer"] for row in heard.result()}
    return sums, cer


def misalignment_on_ray(probes: list[dict], folder: Path, encoder: str, model_dir: Path,
                        resources: Resources) -> dict[int, dict]:
    """M sums per cluster of the spoken `probes` under the model saved at `model_dir` alone (another model than the
    round's, scoring the same speech)."""
    rows = _cluster_rows(probes)
    if not rows:
        return {}
    actors, gpus = resources.model_actors()
    return _sums(_run(rows, ScoreProbes, {"folder": str(folder), "encoder": encoder, "model_dir": str(model_dir)},
                      actors, gpus))


def _cluster_rows(probes: list[dict]) -> list[dict]:
    """One row per cluster with spoken probes: (cluster, docs as JSON)."""
    by_cluster: dict[int, list[dict]] = {}
    for probe in probes:
        if probe["doc"] is not None:
            by_cluster.setdefault(probe["cluster"], []).append(probe["doc"])
    return [{"cluster": c, "docs": json.dumps(docs)} for c, docs in sorted(by_cluster.items())]


def _sums(rows: list[dict]) -> dict[int, dict]:
    return {row["cluster"]: {"m": row["m"], "distill": row["distill"], "tokens": row["tokens"]} for row in rows}


def scoring_actors(resources: Resources) -> tuple[tuple[int, float], int]:
    """((model actors, GPUs each), ASR actors) for the two pools that run side by side. Where the model has GPUs the
    ASR takes the CPU rule; on CPUs alone the two share it, one actor each at least. Their input is in the object
    store already, so no task needs the CPU the rule keeps for feeding; and pools that each want more CPUs than
    they can hold together could each wait for the other's."""
    if resources.gpus:
        return resources.model_actors(), resources.actors()
    model = max(1, resources.actors() // 2)
    return (model, 0.0), max(1, resources.actors() - model)


def _run(rows: list[dict], actor: type, setup: dict, actors: int, gpus: float) -> list[dict]:
    import ray.data

    scored = ray.data.from_items(rows, override_num_blocks=min(len(rows), 4 * actors)).map_batches(
        actor, fn_constructor_kwargs=setup, batch_size=4, batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=gpus, num_cpus=0 if gpus else 1)
    return scored.take_all()
