"""What the misalignment explorer looks at: the models of the store (and their checkpoints), and paired item sets.

A `ModelRef` names one set of weights: a saved SaladModel folder (a training run's `final/` or one of its
`checkpoints/step-NNNNNN/`), or, for models an evaluation built from a preset (no folder), that run's config.
`model_key` identifies the weights by content (file digest), so a cache entry never outlives the weights it came from.

An item set is a list of paired items, each the same question as text and as speech:
    world:<preset>/<split>@<limit>   the mini world's items and their spoken questions (held-out eval voices)
    run:<eval run id>@<limit>        the items of an evaluation run, with the audio that run played
`limit` caps the items per task (omit it for all). Nothing here imports torch: the dashboard reads these.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from salad_core.model.names import parse_llm_name
from salad_core.runs import FINAL, checkpoints_in
from salad_core.store import Store
from salad_core.tasks.item import SPLITS, Item

WEIGHTS_NAME = "model.safetensors"  # as salad_core.model.modeling writes it (imported lazily there: torch)
_SPEC = re.compile(r"^(?P<source>world|run):(?P<name>[^/@]+)(?:/(?P<split>[a-z]+))?(?:@(?P<limit>\d+))?$")


# ---------------------------------------------------------------------------------------------------------------
# Models


@dataclass(frozen=True)
class ModelRef:
    ref_id: str  # the weights folder (resolved), or "eval:<run id>" for a model built from a preset
    label: str
    model_id: str
    path: str | None  # folder holding model.safetensors + config.json
    build_config: dict | None = None  # the evaluation config that builds it, when there is no folder
    preset: str | None = None
    step: int | None = None  # checkpoint step; None for a run's final weights

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def model_key(ref: ModelRef) -> str:
    """`<slug>-<16 hex>`: a digest of the weights file and config, or of the preset config that builds the model."""
    from salad_core.assets import file_digest

    h = hashlib.sha256()
    if ref.path:
        folder = Path(ref.path)
        h.update(file_digest(folder / WEIGHTS_NAME).encode())
        h.update((folder / "config.json").read_bytes())
        llm = json.loads((folder / "config.json").read_text()).get("llm_name", "")
    else:
        h.update(json.dumps({k: ref.build_config.get(k) for k in ("preset", "llm", "encoder", "seed", "speech_llm")
                             if k != "speech_llm" or ref.build_config.get(k)},
                            sort_keys=True).encode())
        llm = ref.build_config.get("llm") or ""
    h.update(_backbone(llm).encode())
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", ref.model_id.rstrip("/").split("/")[-1])[:40]
    return f"{slug}{'-step' + str(ref.step) if ref.step is not None else ''}-{h.hexdigest()[:16]}"


def _backbone(llm_name: str) -> str:
    """A world's own LM lives in that world's folder: rebuilding the world changes the LLM under the same name."""
    parsed = parse_llm_name(llm_name) if llm_name else None
    if parsed is not None and parsed.is_world:
        from salad_core.world import world_dir

        return f"{world_dir(parsed.world).name}/{parsed.lm_folder or ''}"
    return llm_name


def _run_preset(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "config.json").read_text()).get("preset")
    except (OSError, json.JSONDecodeError):
        return None


def store_models(store: Store) -> list[ModelRef]:
    """Every model of the store whose weights can be loaded here, newest first; checkpoints after their run's final.

    Evaluation runs name a trained model by its folder; those rows merge with the training run's (same folder)."""
    rows = store.query("SELECT m.model_id, m.name, m.path, r.run_id, r.kind, r.config FROM models m "
                       "JOIN runs r USING (model_id) ORDER BY r.created_at DESC, r.run_id DESC")
    refs: dict[str, ModelRef] = {}
    for row in rows.itertuples():
        if isinstance(row.path, str) and (Path(row.path) / WEIGHTS_NAME).is_file():
            folder = Path(row.path).resolve()
            ref = ModelRef(str(folder), row.name or row.model_id, row.model_id, str(folder),
                           preset=_run_preset(folder.parent))
            if str(folder) not in refs or row.kind == "train":  # the training run's name is the readable one
                refs[str(folder)] = ref
        elif not isinstance(row.path, str) and row.kind == "eval":
            config = json.loads(row.config) if isinstance(row.config, str) else dict(row.config or {})
            ref_id = f"eval:{row.model_id}"
            refs.setdefault(ref_id, ModelRef(ref_id, row.name or row.model_id, row.model_id, None, config,
                                             preset=config.get("preset")))
    out = []
    for ref in refs.values():
        out.append(ref)
        if ref.path and Path(ref.path).name == FINAL:
            out += [ModelRef(str(p), f"{ref.label} · step {step}", ref.model_id, str(p), preset=ref.preset, step=step)
                    for step, p in reversed(checkpoints_in(Path(ref.path).parent))]
    return out


def find_model(store: Store, ref_id: str) -> ModelRef:
    """The store's model `ref_id`: `eval:<model id>`, or a model folder (relative paths too)."""
    if Path(ref_id).exists():
        ref_id = str(Path(ref_id).resolve())
    for ref in store_models(store):
        if ref.ref_id == ref_id:
            return ref
    raise KeyError(f"No loadable model {ref_id!r} in the store {store.path}. Fix: pick one listed by "
                   "salad_core.explore.sources.store_models (a saved model folder, or eval:<model id>).")


def load_model(ref: ModelRef):
    """The SaladModel (or the diagnosed speech LLM) of `ref`, in eval mode (loads torch and the weights)."""
    from salad_core.eval.config import EvalConfig
    from salad_core.eval.runner import build_model
    from salad_core.model.modeling import SaladModel

    if ref.path:
        return SaladModel.from_pretrained(ref.path)
    known = EvalConfig.__dataclass_fields__
    return build_model(EvalConfig(**{k: v for k, v in ref.build_config.items() if k in known}))


# ---------------------------------------------------------------------------------------------------------------
# Item sets


@dataclass(frozen=True)
class ItemSetSpec:
    source: str  # "world" | "run"
    name: str  # world preset, or evaluation run id
    split: str = "test"
    limit: int | None = None  # items per task

    def __str__(self) -> str:
        split = f"/{self.split}" if self.source == "world" else ""
        return f"{self.source}:{self.name}{split}{'' if self.limit is None else '@' + str(self.limit)}"

    @classmethod
    def parse(cls, text: str) -> ItemSetSpec:
        match = _SPEC.match(text.strip())
        if not match or (match["split"] and match["split"] not in SPLITS):
            raise ValueError(f"Item set {text!r} is not understood. Fix: write world:<preset>/<split>@<limit> "
                             "(e.g. world:nano/test@50) or run:<eval run id>@<limit>.")
        limit = int(match["limit"]) if match["limit"] else None
        return cls(match["source"], match["name"], match["split"] or "test", limit)


@dataclass(frozen=True)
class PairedItem:
    item: Item
    item_id: str  # the key shown and stored (the store's id for run items)
    audio_ref: str  # world clip id, or audio file path
    audio_id: str


@dataclass
class ItemSet:
    spec: ItemSetSpec
    items: list[PairedItem]
    world: object | None = field(default=None, repr=False)  # salad_core.world.World for world sets

    @property
    def digest(self) -> str:
        h = hashlib.sha256(str(self.spec).encode())
        h.update(str(getattr(self.world, "root", Path("")).name).encode())
        for p in self.items:
            h.update(json.dumps([p.item_id, p.item.question, list(p.item.choices), p.item.answer, p.audio_id]).encode())
        return h.hexdigest()[:16]

    def frames(self, encoder, items: list[PairedItem]) -> list:
        """Encoder frames of the items' spoken questions: the world's cached frames, else the audio encoded now."""
        if self.world is not None:
            return self.world.features([p.audio_ref for p in items], encoder)
        from salad_core.audio import load_audio

        return encoder.encode([load_audio(p.audio_ref) for p in items])


def _limited(items: list[PairedItem], limit: int | None) -> list[PairedItem]:
    if limit is None:
        return items
    seen: dict[str, int] = {}
    kept = []
    for p in items:
        seen[p.item.task] = seen.get(p.item.task, 0) + 1
        if seen[p.item.task] <= limit:
            kept.append(p)
    return kept


def _world_items(spec: ItemSetSpec) -> ItemSet:
    from salad_core.assets import AssetError
    from salad_core.world import load_world

    world = load_world(spec.name)
    items = []
    for domain in world.domains:
        for item in world.task_items(domain.name, spec.split):
            try:
                clip = world.eval_clip(item.item_id)
            except (KeyError, AssetError):  # few-shot examples and failed clips have no spoken question
                continue
            items.append(PairedItem(item, item.item_id, clip, clip))
    return ItemSet(spec, _limited(items, spec.limit), world)


def _run_items(spec: ItemSetSpec, store: Store) -> ItemSet:
    rows = store.paired_items(spec.name)
    rows = rows[rows["audio_path"].notna()]
    if rows.empty:
        raise ValueError(f"Evaluation run {spec.name!r} has no items with audio in {store.path}. Fix: pick a run "
                         "with a speech lane, or a world item set (world:<preset>/test).")
    items = [PairedItem(Item(r.task, str(r.doc_id), r.split if r.split in SPLITS else "test", r.question,
                             tuple(r.choices), int(r.answer), r.domain or "unknown"), r.item_id, r.audio_path,
                        r.audio_id)
             for r in rows.itertuples()]
    return ItemSet(spec, _limited(items, spec.limit))


def load_item_set(spec: ItemSetSpec | str, store: Store | None = None) -> ItemSet:
    spec = ItemSetSpec.parse(spec) if isinstance(spec, str) else spec
    item_set = _world_items(spec) if spec.source == "world" else _run_items(spec, store or Store())
    if not item_set.items:
        raise ValueError(f"Item set {spec} holds no paired item (text + audio). Fix: choose another split or run.")
    return item_set


def item_set_choices(store: Store, ref: ModelRef) -> list[ItemSetSpec]:
    """Item sets that fit a model: its training world's test items (when built), then its evaluations' items."""
    from salad_core.presets import PRESETS
    from salad_core.world import is_built

    choices = []
    world = PRESETS[ref.preset].world if ref.preset in PRESETS else None
    if world and is_built(world):
        choices.append(ItemSetSpec("world", world, "test"))
    runs = store.query("SELECT r.run_id, m.model_id, m.path FROM runs r JOIN models m USING (model_id) "
                       "WHERE r.kind = 'eval' AND r.status = 'done' ORDER BY r.created_at DESC")
    for run in runs.itertuples():
        same_folder = ref.path is not None and isinstance(run.path, str) and Path(run.path).resolve() == Path(ref.path)
        if same_folder or (ref.path is None and run.model_id == ref.model_id):
            choices.append(ItemSetSpec("run", run.run_id))
    return choices


def item_audio(spec: ItemSetSpec | str, audio_ref: str) -> np.ndarray | str:
    """What a player needs for one item: 16 kHz samples of a world clip, or the path of an evaluation's file."""
    spec = ItemSetSpec.parse(spec) if isinstance(spec, str) else spec
    if spec.source == "world":
        from salad_core.world import load_world

        return load_world(spec.name).audio(audio_ref)
    return audio_ref
