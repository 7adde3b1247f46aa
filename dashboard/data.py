"""Cached reads of the results store for the dashboard.

`st.cache_data` with a short ttl: pages rerun often (widgets, fragments) but the store is read at most every few
seconds per query; each caller gets its own copy of the frame. Keys are plain strings (store path, run id), so
the cache is shared by every session looking at the same store. `clear()` drops everything, e.g. when a job ends.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from salad_core.store import Store, store_path

TTL_S = 5


def default_store_path() -> str:
    """The store the dashboard opens first: `$SALAD_STORE`, else `$SALAD_DATA/salad.duckdb`."""
    return str(store_path())


def current_store_path() -> str:
    return st.session_state.get("store_path") or default_store_path()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def runs(path: str, kind: str | None = "eval") -> pd.DataFrame:
    return Store(path).runs(kind)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def model_adapter(path: str, model_id: str) -> dict:
    """What the store recorded of a model's adapter (for a speech LLM: its family and how it hears); {} if none."""
    import json

    frame = Store(path).query("SELECT adapter FROM models WHERE model_id = ?", [model_id])
    value = frame["adapter"].iloc[0] if len(frame) else None
    return json.loads(value) if isinstance(value, str) else {}


@st.cache_data(ttl=TTL_S, show_spinner=False)
def metrics(path: str, run_id: str) -> pd.DataFrame:
    return Store(path).metrics(run_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def condition_metrics(path: str, run_id: str) -> pd.DataFrame:
    return Store(path).condition_metrics(run_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def paired_items(path: str, run_id: str) -> pd.DataFrame:
    return Store(path).paired_items(run_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def option_scores(path: str, run_id: str, item_id: str) -> pd.DataFrame:
    return Store(path).option_scores(run_id, item_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def item_audio(path: object) -> dict:
    """`st.audio`'s arguments for an evaluated item's stored audio: a file, or a world clip (`world:<folder>/<clip>`,
    read from its world's clip bank, cached like the store's reads). FileNotFoundError (or the world's AssetError) names
    what is missing."""
    from salad_core.world import CLIP_REF_PREFIX, clip_ref_audio

    if isinstance(path, str) and path.startswith(CLIP_REF_PREFIX):
        return {"data": clip_ref_audio(path), "sample_rate": 16000}
    if isinstance(path, str) and Path(path).is_file():
        return {"data": path}
    raise FileNotFoundError(f"no audio file at {path or 'no path stored'}")


def clear() -> None:
    st.cache_data.clear()
