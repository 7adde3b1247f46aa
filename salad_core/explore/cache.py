"""On-disk cache of paired representations, keyed by (model weights, item set), one file per layer.

    <cache>/representations/<model key>/<item-set digest>-<recipe>/
        meta.json               written last (its presence marks a complete entry): model, item set, sizes, timing
        items.json              per item: ids, task, domain, question, choices, answer, audio, both lanes' answers,
                                 mean KL, and per aligned position its token and KL
        tokens.safetensors      item (K,): the item each aligned position belongs to; kl (K,) nats
        layer-NN.safetensors    text (N, D), speech (N, D): the question's positions mean-pooled per item;
                                 text_tokens (K, D), speech_tokens (K, D): the aligned next-is-text positions
        metrics.csv             salad_core.explore.metrics per layer and view (long format)

Arrays are safetensors (no pickles). A page reads one layer at a time, so a render touches a few megabytes.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import load_file, save_file

from salad_core.paths import cache_dir

RECIPE = "r1"  # bump when what is extracted changes: old entries are then recomputed, never misread
LAYER_ARRAYS = ("text", "speech", "text_tokens", "speech_tokens")


def entry_folder(model_key: str, item_set_digest: str, k_shot: int) -> Path:
    return cache_dir("representations") / model_key / f"{item_set_digest}-k{k_shot}-{RECIPE}"


def is_complete(folder: Path) -> bool:
    return (Path(folder) / "meta.json").is_file()


def _layer_file(folder: Path, layer: int) -> Path:
    return folder / f"layer-{layer:02d}.safetensors"


@dataclass(frozen=True)
class Extracted:
    """Everything one extraction produced, in memory. L1 = layers + 1 (the input embeddings are layer 0)."""

    pooled_text: np.ndarray  # (L1, N, D)
    pooled_speech: np.ndarray  # (L1, N, D)
    token_text: np.ndarray  # (L1, K, D)
    token_speech: np.ndarray  # (L1, K, D)
    token_item: np.ndarray  # (K,) int64
    token_kl: np.ndarray  # (K,) float32
    items: list[dict]


def write_entry(folder: Path, extracted: Extracted, metrics: pd.DataFrame, meta: dict) -> Path:
    """Write an entry into a temporary folder and rename it into place, so readers never see half of one."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for layer in range(extracted.pooled_text.shape[0]):
        arrays = dict(zip(LAYER_ARRAYS, (extracted.pooled_text[layer], extracted.pooled_speech[layer],
                                         extracted.token_text[layer], extracted.token_speech[layer])))
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}, str(_layer_file(tmp, layer)))
    save_file({"item": extracted.token_item.astype(np.int64), "kl": extracted.token_kl.astype(np.float32)},
              str(tmp / "tokens.safetensors"))
    (tmp / "items.json").write_text(json.dumps(extracted.items))
    metrics.to_csv(tmp / "metrics.csv", index=False)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


class Representations:
    """Read access to one complete cache entry."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not is_complete(self.folder):
            raise FileNotFoundError(f"{self.folder} is not a complete representation cache entry. Fix: compute it "
                                    "first (salad_core.explore.representations.ensure_representations, or the "
                                    "explorer page's Compute button).")

    @cached_property
    def meta(self) -> dict:
        return json.loads((self.folder / "meta.json").read_text())

    @property
    def n_layers(self) -> int:
        """Layers + 1: index 0 is the input embeddings, index L the last layer's output."""
        return int(self.meta["n_layers"])

    @cached_property
    def items(self) -> pd.DataFrame:
        return pd.DataFrame(json.loads((self.folder / "items.json").read_text()))

    @cached_property
    def metrics(self) -> pd.DataFrame:
        return pd.read_csv(self.folder / "metrics.csv")

    def layer(self, layer: int) -> dict[str, np.ndarray]:
        """text, speech (N, D) and text_tokens, speech_tokens (K, D) of one layer."""
        if not 0 <= layer < self.n_layers:
            raise IndexError(f"layer {layer} is outside 0..{self.n_layers - 1} of {self.folder.name}. "
                             "Fix: pick a layer in that range.")
        return load_file(str(_layer_file(self.folder, layer)))

    def tokens(self) -> dict[str, np.ndarray]:
        return load_file(str(self.folder / "tokens.safetensors"))
