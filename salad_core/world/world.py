"""`World`: read access to one built mini world (text, MC items, speech documents, cached encoder features).

The trainer, the tiny LM and the dashboard code against this class; `build.py` writes the folder it reads.
Text is loaded on first use; features are read per clip from the safetensors shards (opened lazily, kept open).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salad_core.assets import AssetError
from salad_core.clips import ClipBank, read_jsonl
from salad_core.documents import Span, SpeechDoc
from salad_core.eval.vocabulary import WORLD_VOICE
from salad_core.tasks.item import SPLITS, Item


@dataclass(frozen=True)
class Domain:
    name: str
    task: str
    kind: str
    in_natural_speech: bool
    description: str


class World:
    eval_voice = WORLD_VOICE  # how a final evaluation speaks its questions: as the world spoke them

    def __init__(self, root: Path):
        self.root = Path(root)
        manifest = json.loads((self.root / "manifest.json").read_text())
        self.manifest = manifest
        self.name: str = manifest["name"]
        self.config: dict = manifest["config"]
        fields = Domain.__dataclass_fields__
        self.domains: list[Domain] = [Domain(**{k: d[k] for k in fields}) for d in manifest["domains"]]

    def __repr__(self) -> str:
        return f"World({self.name!r}, {self.root})"

    # -- text ----------------------------------------------------------------------------------------------------

    def _check_domain(self, domain: str | None) -> None:
        names = [d.name for d in self.domains]
        if domain is not None and domain not in names:
            raise KeyError(f"World '{self.name}' has no domain {domain!r}. Fix: use one of {', '.join(names)}.")

    @functools.cached_property
    def _corpus(self) -> list[dict]:
        return read_jsonl(self.root / "corpus.jsonl")

    @functools.cached_property
    def _probes(self) -> list[dict]:
        return read_jsonl(self.root / "probes.jsonl")

    def text_corpus(self, domain: str | None = None) -> list[str]:
        """The broad text corpus (all domains, shuffled; every fact, the eval facts too): LM pretraining and replay."""
        self._check_domain(domain)
        return [d["text"] for d in self._corpus if domain is None or d["domain"] == domain]

    def selection_pool(self) -> tuple[list[str], list[str]]:
        """(texts, their domains): the corpus documents Stage II may select and speak, none stating an eval fact."""
        pool = [d for d in self._corpus if d["pool"]]
        return [d["text"] for d in pool], [d["domain"] for d in pool]

    @property
    def covered_domains(self) -> set[str]:
        """Names of the domains the natural speech covers."""
        return {d.name for d in self.domains if d.in_natural_speech}

    def probe_docs(self, domain: str | None = None) -> list[str]:
        """Held-out text documents (never in the corpus) for F and M."""
        self._check_domain(domain)
        return [d["text"] for d in self._probes if domain is None or d["domain"] == domain]

    def probe_speech_docs(self, domain: str | None = None) -> list[SpeechDoc]:
        """The probe documents with speech spans in eval voices (for M)."""
        self._check_domain(domain)
        seconds = self._clip_seconds
        return [SpeechDoc(f"p{n:05d}", d["domain"], spans := tuple(Span(t, c) for t, c in d["spans"]),
                          sum(seconds[s.clip_id] for s in spans if s.clip_id))
                for n, d in enumerate(self._probes) if domain is None or d["domain"] == domain]

    def probe_set(self):
        """The probe documents as a `ProbeSet`: what corpus F and M are measured on, each domain standing for its
        task."""
        from salad_core.eval.probes import ProbeSet

        return ProbeSet(f"world:{self.name}", self.probe_speech_docs(), self.bank,
                        {d.name: d.task for d in self.domains})

    # -- the split of facts and the leak audit ---------------------------------------------------------------------

    @functools.cached_property
    def _facts(self) -> list[dict]:
        return read_jsonl(self.root / "facts.jsonl")

    def eval_facts(self) -> dict[str, list[dict]]:
        """Task -> the records of its eval facts (key, question, answer, subject, ...): never in training speech."""
        task = {d.name: d.task for d in self.domains}
        out: dict[str, list[dict]] = {d.task: [] for d in self.domains}
        for fact in self._facts:
            if fact["split"] == "eval":
                out[task[fact["domain"]]].append(fact)
        return out

    def training_texts(self) -> dict[str, list[str]]:
        """What a speech model trains on from this world, by source (natural speech, alignment transcripts, the
        selection pool), as world/build.py's `training_sources` lays them out."""
        from salad_core.world.build import training_sources

        return training_sources(self._speech, self.selection_pool()[0])

    def audit(self) -> list[dict]:
        """The leak audit (world/audit.py) of this world's files: per task and source, eval facts stated."""
        from salad_core.world.audit import audit

        return audit(self.eval_facts(), self.training_texts())

    def export(self, out: Path) -> dict[str, int]:
        """Write eval_items.jsonl, speech_train.jsonl and selection_pool.jsonl into `out`, so that anyone can check
        the world with their own tools; returns the number of lines of each."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        items = [{"task": it["task"], "split": it["split"], "question": it["question"], "choices": it["choices"],
                  "answer": it["answer"]} for it in self._items]
        files = {"eval_items.jsonl": items,
                 "speech_train.jsonl": [{"text": t} for t in self.training_texts()["natural speech"]],
                 "selection_pool.jsonl": [{"text": t} for t in self.selection_pool()[0]]}
        for name, rows in files.items():
            with open(out / name, "w") as f:
                f.writelines(json.dumps(row) + "\n" for row in rows)
        return {name: len(rows) for name, rows in files.items()}

    def vocabulary(self) -> list[str]:
        """Every word token of the world's text (corpus, probes, items, speech documents), sorted."""
        texts = [d["text"] for d in self._corpus + self._probes]
        texts += [it["question"] + " " + " ".join(it["choices"]) for it in self._items]
        texts += [s[0] for d in self._speech for s in d["spans"]]
        return sorted({w for t in texts for w in t.split()})

    # -- tasks ---------------------------------------------------------------------------------------------------

    @functools.cached_property
    def _items(self) -> list[dict]:
        return read_jsonl(self.root / "items.jsonl")

    def task_items(self, domain: str, split: str) -> list[Item]:
        """MC items of one domain and split ("dev" | "test" | "fewshot"), in a fixed order."""
        self._check_domain(domain)
        if split not in SPLITS:
            raise ValueError(f"Unknown split {split!r}. Fix: use one of {', '.join(SPLITS)}.")
        fields = Item.__dataclass_fields__
        return [Item(**{k: (tuple(v) if k == "choices" else v) for k, v in it.items() if k in fields})
                for it in self._items if it["domain"] == domain and it["split"] == split]

    def all_items(self, domain: str) -> list[Item]:
        return [it for split in SPLITS for it in self.task_items(domain, split)]

    @functools.cached_property
    def _item_clips(self) -> dict[str, str]:
        return {f"{it['task']}:{it['doc_id']}": it["clip_id"] for it in self._items}

    def eval_clip(self, item_id: str) -> str:
        """Clip id of an item's spoken question (an eval voice)."""
        if item_id not in self._item_clips:
            raise KeyError(f"World '{self.name}' has no item {item_id!r}. Fix: pass Item.item_id of one of its items.")
        clip = self._item_clips[item_id]
        if clip is None:
            raise KeyError(f"{item_id} is a few-shot example: those are shown as text and have no spoken question. "
                           "Fix: ask for a dev or test item.")
        if clip not in self._clips or "error" in self._clips[clip]:
            raise AssetError(f"The spoken question of {item_id} failed to synthesize when the world was built. "
                             f"Fix: rebuild with `salad world build --corpus {self.name} --force`.")
        return clip

    # -- speech --------------------------------------------------------------------------------------------------

    @functools.cached_property
    def _speech(self) -> list[dict]:
        return read_jsonl(self.root / "speech_docs.jsonl")

    def speech_docs(self) -> list[SpeechDoc]:
        """Natural-speech training documents (covered domains only), text and speech spans alternating."""
        return [SpeechDoc.from_record(d) for d in self._speech]

    @functools.cached_property
    def bank(self) -> ClipBank:
        """Every clip of the world (training, eval questions, probes) and its cached frames."""
        return ClipBank(self.root, self.manifest.get("encoder"), f"world '{self.name}'",
                        "use ids from speech_docs() / eval_clip(), or rebuild the world with --force.")

    @property
    def _clips(self) -> dict[str, dict]:
        return self.bank.records

    @property
    def _clip_seconds(self) -> dict[str, float]:
        return self.bank.seconds

    def clip(self, clip_id: str) -> dict:
        return self.bank.clip(clip_id)

    def uses_encoder(self, encoder) -> bool:
        return self.bank.uses_encoder(encoder)

    def features(self, clip_ids: list[str], encoder=None):
        """Encoder frames per clip (see `ClipBank.features`)."""
        return self.bank.features(clip_ids, encoder)

    def audio(self, clip_id: str) -> np.ndarray:
        return self.bank.audio(clip_id)

    def info(self) -> dict:
        """What `salad world info --json` prints."""
        keys = ("name", "folder", "domains", "natural_speech_domains", "speech_hours", "n_speech_docs", "n_clips",
                "n_train_clips", "n_failed_clips", "eval_speech_hours", "n_corpus_docs", "n_pool_docs", "n_probe_docs",
                "train_voices", "eval_voices", "train_speeds", "encoder", "feature_dtype", "audit", "build_s", "built_at")
        return {**{k: self.manifest.get(k) for k in keys}, "root": str(self.root),
                "speech_register": self.manifest["config"].get("speech_register", "written"),
                "vocabulary_size": len(self.vocabulary())}
