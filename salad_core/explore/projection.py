"""One 2-D map for paired representations: a seeded UMAP fitted on the union of every view shown.

Text and speech rows (and, when two checkpoints are compared, both checkpoints' rows) go into one fit, so their
positions are comparable on one map: a pair's joining line is the distance the model leaves between the two views
of the same content. UMAP distances are not metric (only neighbourhoods are kept); the per-layer metrics are the
quantitative view.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salad_core.explore.cache import Representations
from salad_core.maps import project

ITEM_COLUMNS = ("item_id", "task", "domain", "question", "kl", "answer", "text_pred", "speech_pred")


def map_points(entries: dict[str, Representations], layer: int, seed: int = 0) -> pd.DataFrame:
    """Every item of every entry as two rows (text, speech) at `layer`, placed by one UMAP fitted on all of them.

    Columns: checkpoint (the entries' keys), modality, x, y and the item's ITEM_COLUMNS.
    """
    frames, blocks = [], []
    for label, entry in entries.items():
        states = entry.layer(layer)
        items = entry.items[list(ITEM_COLUMNS)]
        for modality in ("text", "speech"):
            blocks.append(states[modality])
            frames.append(items.assign(checkpoint=label, modality=modality))
    xy = project(np.concatenate(blocks), seed)
    points = pd.concat(frames, ignore_index=True)
    return points.assign(x=xy[:, 0], y=xy[:, 1])
