"""One Stage II selection round (`salad select`), a Ray Data pipeline of stages that resume.

    salad select --from train-…  --gamma 5 --budget 10%      # a tenth of the world's natural speech, active
    salad select --from train-…  --gamma 0 --budget 10%      # the same budget, uniform over the pool's clusters
    salad select --from train-…  --pool hf:HuggingFaceFW/fineweb-edu --budget 2h --ray-address HOST:6379
    salad select --resume select-…                            # an interrupted round, from its finished stages

    documents → unique → embeddings → clusters       select/pool_stages.py, select/assign.py: data/pools/<digest>/
    probes → scores → selected → map                 select/round_stages.py: data/rounds/<round id>/stages/

A round reads its pool (the Stage I run's world by default), scores every cluster with that run's final model, and
writes each stage's output to disk. The pool's stages do not depend on the model, so rounds that read the same pool
alike share them (`pool_stages.run_pool_stages`); the round's own stages live in its folder: the selected documents
and their speech in
`stages/selected/` (a `ClipBank`, and `speech_docs.jsonl`, what `salad train --stage 2` trains on). The store holds
the round (a run of kind 'select' with its config), one row per cluster, per cluster and domain, per text on the
cluster map, per probe and per selected text: not one per pool document. Everything is drawn from `seed`: the same
config gives the same clusters, probes and selection, however Ray splits the work.

Rounds chain: `--from` may name a Stage II run, whose model then scores the clusters, and texts selected by the
earlier rounds of that lineage are not drawn again.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from salad_core.clips import ClipBank, read_jsonl
from salad_core.documents import SpeechDoc
from salad_core.errors import InputError
from salad_core.jobs import note_run
from salad_core.progress import NoProgress, Progress
from salad_core.provenance import new_run_id
from salad_core.runs import Lineage, RunDir
from salad_core.select.config import SelectConfig
from salad_core.select.round_stages import SELECTED_DOCS
from salad_core.store import Store


def budget_hours(budget: str | float, natural_hours: float) -> float:
    """Hours of synthetic audio a budget stands for: "10%" of the natural speech, "0.2"/"0.2h" hours, "720s"."""
    text = str(budget).strip().lower()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%|h|s|)", text)
    if not match or float(match.group(1)) <= 0:
        raise InputError(f"Budget {budget!r} is not understood. Fix: give hours ('0.2' or '0.2h'), seconds ('720s') "
                         "or a share of the natural speech ('10%').")
    value, unit = float(match.group(1)), match.group(2)
    return {"%": value / 100 * natural_hours, "s": value / 3600}.get(unit, value)


def round_dir(round_id: str) -> Path:
    return RunDir(round_id, "select").root


def selected_dir(round_id: str) -> Path:
    """The round's selected documents and their speech (the `selected` stage's folder)."""
    return round_dir(round_id) / "stages" / "selected"


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
            root = selected_dir(round_id)
            if not (root / SELECTED_DOCS).exists():
                raise InputError(f"Selection round {round_id!r} has no selected speech at {root}. Fix: name a "
                                 "finished round (salad select …, or the Active selection page), or finish this one "
                                 f"(salad select --resume {round_id}).")
            encoder = json.loads((round_dir(round_id) / "round.json").read_text())["encoder"]
            self.banks[round_id] = ClipBank(root, encoder, f"selection round {round_id}",
                                            f"rerun the round (salad select --resume {round_id}).")

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


def _plan(config: SelectConfig, source: dict, world) -> dict:
    """What a round derives from its config and its scoring run: hours, how it speaks, with which encoder."""
    from salad_core.speech_data.documents import SpanRanges

    natural = (getattr(world, "manifest", None) or {}).get("speech_hours")
    if natural is None and str(config.budget).strip().endswith("%"):
        raise InputError(f"--budget {config.budget}: the {source['config']['preset']!r} preset has no natural speech "
                         "hours to take a share of. Fix: give hours ('2h') or seconds ('720s').")
    spans = SpanRanges()
    world_config = getattr(world, "config", None) or {}
    model = json.loads((Path(source["model_dir"]) / "config.json").read_text())
    return {"preset": source["config"]["preset"], "budget_hours": budget_hours(config.budget, natural or 0.0),
            "encoder": model["encoder_name"],
            "speech_words": list(world_config.get("speech_words", spans.speech_words)),
            "text_words": list(world_config.get("text_words", spans.text_words))}


def run_round(config: SelectConfig, store: Store | None = None, *, progress: bool = True,
              resume: str | None = None) -> dict:
    """Run one selection round (or finish the round `resume`, from its finished stages); returns what
    `salad select --json` prints."""
    from salad_core.world import preset_world

    store = store or Store()
    source = _source_run(store, config.from_run)
    world = preset_world(source["config"]["preset"], lm=False, progress=False)
    round_id = resume or new_run_id("select")
    folder = round_dir(round_id)
    record = {**asdict(config), **_plan(config, source, world), "round_dir": str(folder)}
    if resume:
        lifecycle = store.running(round_id)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "round.json").write_text(json.dumps(record, indent=1))
        lifecycle = store.run("select", record, seed=config.seed, run_id=round_id, parent_run=config.from_run)
    with lifecycle:
        note_run(round_id)  # the dashboard's job that started this process knows its round
        with Progress(None, "selection") if progress else NoProgress() as bar:
            return _run(config, store, world, source, round_id, record, bar)


def resume_round(round_id: str, store: Store | None = None, *, progress: bool = True) -> dict:
    """Finish an interrupted round with the config it was started with."""
    store = store or Store()
    runs = store.runs("select").set_index("run_id")
    if round_id not in runs.index:
        raise InputError(f"Selection round {round_id!r} is not in the store {store.path}. Fix: name a round that "
                         "`salad runs list --kind select` shows.")
    if runs.loc[round_id, "status"] == "done":
        raise InputError(f"Selection round {round_id} is finished; nothing to resume. Fix: start a new round.")
    saved = runs.loc[round_id, "config"]
    config = SelectConfig(**{f.name: saved[f.name] for f in fields(SelectConfig) if f.name in saved})
    return run_round(config, store, progress=progress, resume=round_id)


def _run(config: SelectConfig, store: Store, world, source: dict, round_id: str, record: dict,
         bar: Progress | NoProgress) -> dict:
    from salad_core.select import pool_stages, round_stages
    from salad_core.select.allocation import target_distribution
    from salad_core.select.assign import cluster_domains, read_members
    from salad_core.select.draws import free_sizes
    from salad_core.select.pool import PoolSource
    from salad_core.select.probing import cluster_scores
    from salad_core.select.ray_runtime import start_ray
    from salad_core.select.stages import Stages

    stages = Stages(round_dir(round_id))
    texts = PoolSource.parse(config.pool or None, config.pool_column, record["preset"])
    bar.set_stage("starting Ray", None)
    resources = start_ray(config.ray_address or None)
    pool = pool_stages.run_pool_stages(config, texts, world.eval_facts(), Path(world.root).name, resources, bar)
    k, found, clustered = pool.k, pool.found, pool.clustered
    speech = round_stages.Speech(config.voices(), config.speed, config.seed, tuple(record["speech_words"]),
                                 tuple(record["text_words"]), record["encoder"])
    bar.set_stage(f"speaking {config.probes} probes per cluster", None)
    stages.run("probes", round_stages.probes_stage(pool.clusters, k, config.probes, config.seed, speech,
                                                   resources))
    bar.set_stage(f"scoring clusters (misalignment; intelligibility by {config.asr})", None)
    scored = stages.run("scores", round_stages.scores_stage(stages.folder("probes"), record["encoder"],
                                                            source["model_dir"], config.asr, resources))
    probes = read_jsonl(stages.folder("probes") / round_stages.PROBES)
    spoken = np.array([p["cluster"] for p in probes if p["doc"] is not None], dtype=int)
    scores = cluster_scores(k, {int(c): s for c, s in scored["sums"].items()},
                            {int(c): x for c, x in scored["cer"].items()}, np.bincount(spoken, minlength=k))
    sizes, n = np.asarray(clustered["sizes"]), clustered["n"]
    m = np.array([s.m if config.score == "m" else s.distill for s in scores])
    filtered = np.array([not (s.cer <= config.cer_max) for s in scores])  # NaN (no probe speech) is filtered too
    p_web = sizes / n
    active = config.strategy == "active"
    # random draws texts uniformly from the whole pool: the distribution it aims for is the pool's own
    p_target = target_distribution(p_web, m, config.gamma, filtered) if active else p_web

    earlier = Lineage.of(store).rounds_behind(config.from_run)
    taken = {int(key) for old in earlier for key in store.selection_texts(old, "selected")["text_key"]}
    exclude = np.array(sorted(taken | {p["key"] for p in probes}), dtype=np.int64)
    members = read_members(pool.clusters)
    capacity = free_sizes(members, exclude, k) if active else None
    doc_seconds = float(np.mean([p["doc"]["seconds"] for p in probes if p["doc"]])) if len(spoken) else 3.0
    bar.set_stage(f"speaking the selection ({record['budget_hours']:.2f} h)", None)
    chosen = stages.run("selected", round_stages.selected_stage(
        pool.clusters, p_target if active else None, capacity, exclude, record["budget_hours"] * 3600,
        doc_seconds, config.seed, speech, resources))
    bar.set_stage("cluster map (UMAP)", None)
    stages.run("map", round_stages.map_stage(pool.embeddings, pool.clusters, config.map_points, config.seed))

    selected = read_jsonl(stages.folder("selected") / SELECTED_DOCS)
    domains = cluster_domains(members)
    clusters = _cluster_rows(k, sizes, p_web, scores, filtered, p_target, selected, domains)
    _record(store, round_id, stages, clusters, domains, probes, selected)
    timings = pool.timings() | {f"{name}_s": stages.record(name)["seconds"] for name in stages.finished()}
    record.update(k=k, n_texts=n, pool_counts={key: found[key] for key in ("read", "stating_eval_facts",
                                                                           "duplicates", "unique")},
                  kmeans_iterations=clustered["kmeans_iterations"], balance_passes=clustered["balance_passes"],
                  ray_cpus=resources.cpus, ray_gpus=resources.gpus, earlier_rounds=earlier,
                  pool_dir=str(pool.folder), clustering=pool.clustering, pool_stages_reused=pool.reused,
                  selected_hours=chosen["selected_s"] / 3600, timings=timings)
    (round_dir(round_id) / "round.json").write_text(json.dumps(record, indent=1))
    return {"round_id": round_id, "gamma": config.gamma, "strategy": config.strategy,
            "budget_hours": record["budget_hours"], "selected_hours": chosen["selected_s"] / 3600,
            "n_selected": len(selected), "from_run": config.from_run, "n_texts": n, "timings": timings,
            "clusters": [{"id": c["cluster"], **{k2: c[k2] for k2 in ("size", "p_web", "m", "m_distill", "cer",
                                                                    "filtered", "p_target", "n_selected", "domain")}}
                         for c in clusters]}


def _cluster_rows(k, sizes, p_web, scores, filtered, p_target, selected, domains) -> list[dict]:
    picked, seconds = np.zeros(k, dtype=int), np.zeros(k)
    for doc in selected:
        picked[doc["cluster"]] += 1
        seconds[doc["cluster"]] += doc["seconds"]
    largest: dict[int, tuple[int, str]] = {}
    for row in domains:
        largest[row["cluster"]] = max(largest.get(row["cluster"], (0, "")), (row["size"], row["domain"]))
    rows = []
    for c in range(k):
        s = scores[c]
        rows.append({"cluster": c, "size": int(sizes[c]), "p_web": float(p_web[c]), "m": _num(s.m),
                     "m_distill": _num(s.distill), "m_tokens": s.tokens, "cer": _num(s.cer),
                     "filtered": bool(filtered[c]), "p_target": float(p_target[c]), "n_probes": s.n_probes,
                     "n_selected": int(picked[c]), "selected_s": float(seconds[c]),
                     "domain": largest.get(c, (0, None))[1] or None})
    return rows


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _record(store: Store, round_id: str, stages, clusters: list[dict], domains: list[dict], probes: list[dict],
            selected: list[dict]) -> None:
    """The round in the store: its clusters, their domains, the texts on the map, the probes, the selection."""
    import pyarrow.parquet as pq

    drawn = stages.folder("map") / "map.parquet"
    shown = pq.read_table(drawn).to_pylist() if drawn.exists() else []
    texts = [{"text_key": r["key"], "role": "member", "cluster": r["cluster"], "domain": r["domain"],
              "text": r["text"], "x": _num(r["x"]), "y": _num(r["y"])} for r in shown]
    texts += [{"text_key": p["key"], "role": "probe", "cluster": p["cluster"], "domain": p["domain"],
               "text": p["text"], "doc_id": p["doc"]["doc_id"] if p["doc"] else None,
               "seconds": p["doc"]["seconds"] if p["doc"] else None} for p in probes]
    texts += [{"text_key": d["key"], "role": "selected", "cluster": d["cluster"], "domain": d["domain"],
               "text": d["text"], "doc_id": d["doc_id"], "seconds": d["seconds"]} for d in selected]
    store.add_selection_clusters(round_id, clusters)
    store.add_selection_domains(round_id, domains)
    store.add_selection_texts(round_id, texts)
