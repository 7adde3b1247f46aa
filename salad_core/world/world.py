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
from salad_core.tasks.item import SPLITS, Item


@dataclass(frozen=True)
class Domain:
    name: str
    task: str
    kind: str
    in_natural_speech: bool
    description: str


class World:
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
        """The broad text corpus (all domains, shuffled): LM pretraining and replay."""
        self._check_domain(domain)
        return [d["text"] for d in self._corpus if domain is None or d["domain"] == domain]

    @property
    def covered_domains(self) -> set[str]:
        """Names of the domains the natural speech covers."""
        return {d.name for d in self.domains if d.in_natural_speech}

    def corpus_domains(self) -> list[str]:
        """The domain of each `text_corpus()` document, in the same order."""
        return [d["domain"] for d in self._corpus]

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
                             f"Fix: rebuild with `salad world build --preset {self.name} --force`.")
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
                "n_train_clips", "n_failed_clips", "eval_speech_hours", "n_corpus_docs", "n_probe_docs",
                "train_voices", "eval_voices", "train_speeds", "encoder", "feature_dtype", "build_s", "built_at")
        return {**{k: self.manifest.get(k) for k in keys}, "root": str(self.root),
                "speech_register": self.manifest["config"].get("speech_register", "written"),
                "vocabulary_size": len(self.vocabulary())}
