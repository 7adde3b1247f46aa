"""One Stage II selection round (`salad select`): embed, cluster, probe, score, filter, allocate, synthesize, record.

    salad select --from train-…  --gamma 5 --budget 10%      # a tenth of the world's natural speech, active
    salad select --from train-…  --gamma 0 --budget 10%      # the same budget, uniform over the corpus's clusters

A round reads the broad text corpus of the Stage I run's world, scores every cluster with that run's final model,
and writes to `data/rounds/<round id>/` the spoken probe and selected documents (a `ClipBank`: clips.jsonl,
features/) plus `speech_docs.jsonl`, the selected documents that `salad train --stage 2` trains on. The store holds
the round (a run of kind 'select' with its config), one row per cluster and one per corpus, probe and selected text.
Everything is drawn from `seed`: the same config gives the same clusters, probes and selection.

Rounds chain: `--from` may name a Stage II run, whose model then scores the clusters, and texts selected by the
earlier rounds of that lineage are not drawn again.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from salad_core.clips import ClipBank, read_jsonl
from salad_core.documents import SpeechDoc, speak_documents
from salad_core.errors import InputError
from salad_core.jobs import note_run
from salad_core.maps import MIN_POINTS, project
from salad_core.progress import NoProgress, Progress
from salad_core.provenance import new_run_id
from salad_core.runs import Lineage, RunDir
from salad_core.select.allocation import draw_texts, target_distribution
from salad_core.select.config import SelectConfig
from salad_core.store import Store
from salad_core.world.speech import ENCODER

log = logging.getLogger(__name__)

SELECTED_DOCS = "speech_docs.jsonl"


def budget_hours(budget: str | float, natural_hours: float) -> float:
    """Hours of synthetic audio a budget stands for: "10%" of the natural speech, "0.2"/"0.2h" hours, "720s"."""
    text = str(budget).strip().lower()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%|h|s|)", text)
    if not match or float(match.group(1)) <= 0:
        raise InputError(f"Budget {budget!r} is not understood. Fix: give hours ('0.2' or '0.2h'), seconds ('720s') "
                         "or a share of the natural speech ('10%').")
    value, unit = float(match.group(1)), match.group(2)
    return {"%": value / 100 * natural_hours, "s": value / 3600}.get(unit, value)


def default_clusters(n_texts: int) -> int:
    """K = 128 on real corpora (the paper); on a small one, about 140 texts a cluster (24 on the mini world's)."""
    return max(4, min(128, n_texts, n_texts // 140))


def round_dir(round_id: str) -> Path:
    return RunDir(round_id, "select").root


# ---------------------------------------------------------------------------------------------------------------
# Reading a finished round (the Stage II trainer's synthetic speech)


class SelectedSpeech:
    """The selected documents of one or more rounds and their clips: what Stage II trains on besides the natural
    speech. Clip ids are prefixed with their round (`select-…/sel0-00012-03`), as rounds name clips alike."""

    def __init__(self, round_ids: list[str]):
        self.round_ids = list(round_ids)
        self.round_id = ", ".join(self.round_ids)
        self.banks = {}
        for round_id in self.round_ids:
            root = round_dir(round_id)
            if not (root / SELECTED_DOCS).exists():
                raise InputError(f"Selection round {round_id!r} has no selected speech at {root}. Fix: name "
                                        "a finished round (salad select …, or the Active selection page).")
            self.banks[round_id] = ClipBank(root, ENCODER, f"selection round {round_id}", "rerun the round.")

    def speech_docs(self) -> list[SpeechDoc]:
        return [SpeechDoc.from_record(d, prefix=f"{r}/")
                for r, bank in self.banks.items() for d in read_jsonl(bank.root / SELECTED_DOCS)]

    def features(self, clip_ids: list[str], encoder=None):
        out = [None] * len(clip_ids)
        by_round: dict[str, list[int]] = {}
        for i, clip in enumerate(clip_ids):
            by_round.setdefault(clip.split("/", 1)[0], []).append(i)
        for round_id, where in by_round.items():
            frames = self.banks[round_id].features([clip_ids[i].split("/", 1)[1] for i in where], encoder)
            for i, f in zip(where, frames):
                out[i] = f
        return out


# ---------------------------------------------------------------------------------------------------------------
# Running a round


def _source_run(store: Store, run_id: str) -> dict:
    runs = store.runs("train")
    row = runs[runs["run_id"] == run_id]
    if row.empty:
        known = ", ".join(runs["run_id"].head(5)) or "none yet"
        raise InputError(f"Training run {run_id!r} is not in the store {store.path}. Fix: name a finished "
                         f"`salad train` run (newest: {known}).")
    row = row.iloc[0]
    model_dir = RunDir(run_id, "train").final
    if row["status"] != "done" or not (model_dir / "config.json").exists():
        raise InputError(f"Training run {run_id} is {row['status']} and has no final model at {model_dir}. "
                         "Fix: let it finish (or resume it: salad train --resume RUN_ID) before selecting.")
    return {"config": row["config"], "model_dir": model_dir}


def _pick_probes(labels: np.ndarray, k: int, per_cluster: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 5])
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_cluster] for c in range(k)]))


def run_round(config: SelectConfig, store: Store | None = None, *, progress: bool = True) -> dict:
    """Run one selection round; returns what `salad select --json` prints."""
    store = store or Store()
    source = _source_run(store, config.from_run)
    preset = source["config"]["preset"]
    from salad_core.presets import get_preset
    from salad_core.world import preset_world

    if get_preset(preset).world is None:
        raise InputError(f"run {config.from_run} trained the {preset!r} preset, whose speech is a fixed corpus with no "
                         "selection pool (Stage II selects from a mini world's). Fix: select from a mini or nano run.")
    world = preset_world(preset)
    hours = budget_hours(config.budget, world.manifest["speech_hours"])
    round_id = new_run_id("select")
    record = {**asdict(config), "preset": preset, "budget_hours": hours, "round_dir": str(round_dir(round_id))}
    with store.run("select", record, seed=config.seed, run_id=round_id, parent_run=config.from_run):
        note_run(round_id)  # the dashboard's job that started this process knows its round
        with Progress(None, "selection") if progress else NoProgress() as bar:
            return _run(config, store, world, source, round_id, hours, record, bar)


def _run(config: SelectConfig, store: Store, world, source: dict, round_id: str, hours: float, record: dict,
         bar: Progress | NoProgress) -> dict:
    from salad_core.asr import Transcriber
    from salad_core.model.modeling import SaladModel
    from salad_core.select.clustering import balanced_kmeans
    from salad_core.select.embed import cached_embeddings
    from salad_core.select.probing import cluster_scores, intelligibility, misalignment

    started, timings = time.monotonic(), {}
    folder = round_dir(round_id)
    folder.mkdir(parents=True, exist_ok=True)
    texts, domains = world.selection_pool()  # no eval fact in what Stage II may speak (world/audit.py)
    n = len(texts)
    k = config.clusters or default_clusters(n)

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started - sum(timings.values()), 2)

    bar.set_stage(f"embedding {n:,} texts", None)
    embeddings, embed_file = cached_embeddings(texts, config.embedder, progress=False)
    lap("embed_s")
    bar.set_stage(f"clustering into {k} balanced clusters", 15)
    clustering = balanced_kmeans(embeddings, k, seed=config.seed, on_iteration=lambda _: bar.update(1))
    labels, sizes = clustering.labels, clustering.sizes
    lap("cluster_s")

    probe_idx = _pick_probes(labels, k, config.probes, config.seed)
    spans = {"speech_words": tuple(world.config["speech_words"]), "text_words": tuple(world.config["text_words"])}
    voices = config.voices()
    speak = {"voices": voices, "speed": config.speed, "seed": config.seed, "encoder": ENCODER, **spans}
    # probes in the first voice alone, so that every cluster's M(c) and CER are measured alike
    probe_docs = speak_documents([texts[i] for i in probe_idx], folder, prefix="probe", role="probe",
                                 progress=bar, **{**speak, "voices": voices[:1]})
    kept = [(i, d) for i, d in zip(probe_idx, probe_docs) if d is not None]
    bank = ClipBank(folder, ENCODER, f"selection round {round_id}", "rerun the round.")
    lap("probe_speech_s")

    model = SaladModel.from_pretrained(source["model_dir"])
    bar.set_stage("scoring clusters (misalignment)", len(kept))
    sums = misalignment(model, bank, [d for _, d in kept], [int(labels[i]) for i, _ in kept], bar)
    lap("score_s")
    bar.set_stage(f"intelligibility ({config.asr})", k)
    cer = intelligibility(Transcriber(config.asr, beam_size=1), bank, [d for _, d in kept],
                          [int(labels[i]) for i, _ in kept], progress=bar)
    lap("asr_s")
    scores = cluster_scores(k, sums, cer, np.bincount(labels[[i for i, _ in kept]], minlength=k))
    m = np.array([s.m if config.score == "m" else s.distill for s in scores])
    filtered = np.array([not (s.cer <= config.cer_max) for s in scores])  # NaN (no probe speech) is filtered too
    p_web = sizes / n
    # random draws texts uniformly from the whole corpus: the distribution it aims for is the corpus's own
    p_target = target_distribution(p_web, m, config.gamma, filtered) if config.strategy == "active" else p_web

    available = np.ones(n, dtype=bool)
    available[probe_idx] = False
    earlier = Lineage.of(store).rounds_behind(config.from_run)
    for old in earlier:
        available[store.selection_texts(old, "selected")["text_idx"].to_numpy(dtype=int)] = False
    order = draw_texts(labels, p_target if config.strategy == "active" else None, available, config.seed)
    selected = _synthesize_budget(order, texts, folder, hours * 3600, kept, speak, bar)
    lap("selection_speech_s")

    for doc in selected:
        doc.update(cluster=int(labels[doc["text_idx"]]), domain=domains[doc["text_idx"]])
    with open(folder / SELECTED_DOCS, "w") as f:
        for doc in selected:
            f.write(json.dumps(doc) + "\n")

    bar.set_stage("cluster map (UMAP)", None)
    rng = np.random.default_rng([config.seed, 9])
    shown = np.sort(rng.permutation(n)[: min(config.map_points, n)])
    xy = project(embeddings[shown], config.seed) if len(shown) >= MIN_POINTS else np.zeros((len(shown), 2))
    lap("map_s")

    clusters = _cluster_rows(k, sizes, p_web, scores, filtered, p_target, selected, labels, domains)
    _record(store, round_id, texts, domains, labels, shown, xy, probe_idx, probe_docs, selected, clusters)
    selected_s = sum(d["seconds"] for d in selected)
    record.update(k=k, n_texts=n, embeddings=str(embed_file), kmeans_iterations=clustering.iterations,
                  earlier_rounds=earlier, selected_hours=selected_s / 3600, timings=timings)
    (folder / "round.json").write_text(json.dumps(record, indent=1))
    return {"round_id": round_id, "gamma": config.gamma, "strategy": config.strategy, "budget_hours": hours,
            "selected_hours": selected_s / 3600, "n_selected": len(selected), "from_run": config.from_run,
            "timings": timings,
            "clusters": [{"id": c["cluster"], **{k2: c[k2] for k2 in ("size", "p_web", "m", "m_distill", "cer",
                                                                    "filtered", "p_target", "n_selected", "domain")}}
                         for c in clusters]}


def _synthesize_budget(order, texts: list[str], folder: Path, budget_s: float, probes: list, speak: dict,
                       bar: Progress | NoProgress) -> list[dict]:
    """Speak drawn texts, batch by batch, until their audio reaches the budget (the last document may cross it)."""
    per_doc = np.mean([d["seconds"] for _, d in probes]) if probes else 3.0
    selected, spent, batch = [], 0.0, 0
    bar.set_stage("selected speech", None)
    while spent < budget_s:
        want = max(8, math.ceil((budget_s - spent) / max(per_doc, 0.1) * 1.1))
        idx = [i for _, i in zip(range(want), order)]
        if not idx:
            log.warning("the corpus ran out of texts after %.0f of %.0f s", spent, budget_s)
            break
        docs = speak_documents([texts[i] for i in idx], folder, prefix=f"sel{batch}", role="selected",
                               progress=bar, **speak)
        batch += 1
        for i, doc in zip(idx, docs):
            if doc is None or spent >= budget_s:
                continue
            selected.append({**doc, "text_idx": int(i)})
            spent += doc["seconds"]
    return selected


def _cluster_rows(k, sizes, p_web, scores, filtered, p_target, selected, labels, domains) -> list[dict]:
    picked = Counter(d["cluster"] for d in selected)
    seconds = Counter()
    for d in selected:
        seconds[d["cluster"]] += d["seconds"]
    rows = []
    for c in range(k):
        members = Counter(domains[i] for i in np.flatnonzero(labels == c))
        s = scores[c]
        rows.append({"cluster": c, "size": int(sizes[c]), "p_web": float(p_web[c]), "m": _num(s.m),
                     "m_distill": _num(s.distill), "m_tokens": s.tokens, "cer": _num(s.cer),
                     "filtered": bool(filtered[c]), "p_target": float(p_target[c]), "n_probes": s.n_probes,
                     "n_selected": picked[c], "selected_s": seconds[c],
                     "domain": members.most_common(1)[0][0] if members else None})
    return rows


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _record(store, round_id, texts, domains, labels, shown, xy, probe_idx, probe_docs, selected, clusters) -> None:
    where = {int(i): (float(a), float(b)) for i, (a, b) in zip(shown, xy)}
    members = [{"text_idx": i, "role": "member", "cluster": int(labels[i]), "domain": domains[i], "text": texts[i],
                "x": where.get(i, (None, None))[0], "y": where.get(i, (None, None))[1]} for i in range(len(texts))]
    probes = [{"text_idx": int(i), "role": "probe", "cluster": int(labels[i]), "domain": domains[i],
               "text": texts[i], "doc_id": d["doc_id"] if d else None, "seconds": d["seconds"] if d else None}
              for i, d in zip(probe_idx, probe_docs)]
    chosen = [{"text_idx": d["text_idx"], "role": "selected", "cluster": d["cluster"], "domain": d["domain"],
               "text": texts[d["text_idx"]], "doc_id": d["doc_id"], "seconds": d["seconds"]} for d in selected]
    store.add_selection_clusters(round_id, clusters)
    store.add_selection_texts(round_id, members + probes + chosen)
