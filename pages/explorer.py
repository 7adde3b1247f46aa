"""Misalignment explorer: where, layer by layer, the adapted model keeps a question read apart from the same
question heard. A UMAP map of paired hidden states (a line per pair), per-layer alignment metrics, and any item
opened with its audio, its answers on both lanes and its token-level KL; a second checkpoint side by side.

The hidden states are computed by `python -m salad_core.explore` as a background job and cached on disk; this page
only reads the cache. Widget keys start with `exp_`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, explorer_charts, job_panel, widgets
from salad_core import jobs
from salad_core.eval.vocabulary import K_SHOT
from salad_core.explore import cache, projection, sources
from salad_core.store import Store, StoreError

JOB_NAME = "explore"
DEFAULT_LIMIT = 50
INTRO = (
    "Each item is one question given to the adapted model twice: read as text and heard as speech. For every layer "
    "(0 = input embeddings) we take the hidden states of both views — mean-pooled over the question, and at the "
    "aligned positions after it whose next token is text — and measure: **pair cosine** (mean cosine of the two "
    "views of an item; 1 = same direction), **norm ratio** (mean |speech| / |text|), the **modality gap** (distance "
    "between the centroids of the unit-normalised text and speech states, Liang et al. 2022; 0 = overlapping) and "
    "**linear CKA** (similarity of the two clouds' geometry, 0–1). **Item KL** = mean KL(P(next | text) ‖ "
    "P(next | speech)) over the aligned positions, in nats per token (SALAD's M for one item). The map is one UMAP "
    "of all points shown (both checkpoints share it); only its neighbourhoods carry meaning, not its distances.")


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def model_refs(path: str) -> list[dict]:
    return [ref.to_dict() for ref in sources.store_models(Store(path))]


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def item_set_choices(path: str, ref: dict) -> list[str]:
    return [str(spec) for spec in sources.item_set_choices(Store(path), sources.ModelRef(**ref))]


@st.cache_data(ttl=60, show_spinner=False)
def entry_folder(path: str, ref: dict, spec: str) -> str:
    item_set = sources.load_item_set(spec, Store(path))
    return str(cache.entry_folder(sources.model_key(sources.ModelRef(**ref)), item_set.digest, K_SHOT))


@st.cache_data(ttl=600, show_spinner=False)
def entry_frames(folder: str) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    entry = cache.Representations(folder)
    return entry.items, entry.metrics, entry.n_layers


@st.cache_data(show_spinner="Projecting with UMAP (the first map of a session takes longest)…")
def map_points(folders: tuple[tuple[str, str], ...], layer: int) -> pd.DataFrame:
    return projection.map_points({label: cache.Representations(f) for label, f in folders}, layer)


def pick_models(refs: list[dict]) -> tuple[dict, dict | None]:
    by_id = {r["ref_id"]: r for r in refs}
    left, right = st.columns(2)
    first = left.selectbox("Model", list(by_id), format_func=lambda i: by_id[i]["label"], key="exp_model")
    others = ["none", *[i for i in by_id if i != first]]
    second = right.selectbox("Compare with (same item set, same map)", others, key="exp_compare",
                             format_func=lambda i: "nothing" if i == "none" else by_id[i]["label"])
    return by_id[first], (None if second == "none" else by_id[second])


def pick_item_set(path: str, ref: dict) -> str | None:
    choices = item_set_choices(path, ref)
    if not choices:
        st.info("This model has no paired items to look at: its training world is not built here and no evaluation "
                "of it played audio. Build the world (`salad world build --corpus nano`) or evaluate the model "
                "(`salad eval --model <folder>`), then come back.")
        return None
    left, right = st.columns([3, 1])
    spec = left.selectbox("Paired items", choices, key="exp_items",
                          help="world:<preset>/test = the world's test questions in held-out voices; "
                               "run:<id> = the items and audio of that evaluation")
    limit = right.number_input("Items per task (0 = all)", 0, 100_000, DEFAULT_LIMIT, 10, key="exp_limit")
    return f"{spec}@{int(limit)}" if limit else spec


def start_compute(path: str, refs: list[dict], spec: str) -> None:
    for ref in refs:
        args = ["--model", ref["ref_id"], "--items", spec, "--k-shot", str(K_SHOT), "--db", path]
        try:
            job_id = jobs.start_job(args, JOB_NAME, module="salad_core.explore")
            st.success(f"Started `python -m salad_core.explore {' '.join(args)}` as job `{job_id}`.")
        except jobs.JobError as err:
            st.error(str(err))


@st.fragment(run_every=2)
def running_jobs(missing: list[str]) -> None:
    """Progress of the computations; the whole page reruns once every missing entry has appeared."""
    for job in [j for j in jobs.list_jobs(JOB_NAME) if j["state"] == "running"]:
        job_panel.show_job(job, "exp")
    if missing and all(cache.is_complete(folder) for folder in missing):
        st.rerun(scope="app")


def job_target(job: dict) -> tuple[str | None, str | None]:
    """The (model, item set) a computation job works on."""
    args = job.get("args") or []
    value = lambda flag: args[args.index(flag) + 1] if flag in args[:-1] else None  # noqa: E731
    return value("--model"), value("--items")


def show_missing(path: str, refs: list[dict], folders: list[str], spec: str) -> None:
    missing = [ref for ref, folder in zip(refs, folders) if not cache.is_complete(folder)]
    names = ", ".join(f"**{r['label']}**" for r in missing)
    st.info(f"Hidden states of {names} on `{spec}` are not computed yet. Computing loads the model and runs every "
            "item once per view (seconds for the nano world, minutes for larger models); the page fills in when done.")
    recent = [j for j in jobs.list_jobs(JOB_NAME) if job_target(j)[1] == spec]
    busy = {job_target(j)[0] for j in recent if j["state"] == "running"}
    to_start = [r for r in missing if r["ref_id"] not in busy]
    if to_start and st.button("Compute representations", type="primary", key="exp_compute"):
        start_compute(path, to_start, spec)
    if recent and recent[0]["state"] == "failed":
        st.error(f"The last computation (`{recent[0]['job_id']}`) failed:\n\n```\n{recent[0]['error']}\n```")
    running_jobs([f for f in folders if not cache.is_complete(f)])


def handle_click(events: list, items: list[str]) -> None:
    """A point clicked on a map opens its item in the item panel below."""
    current = [explorer_charts.selected_items(e) for e in events]
    clicked = explorer_charts.newly_clicked(current, st.session_state.get("exp_last_click"))
    st.session_state["exp_last_click"] = current
    if clicked in items:
        st.session_state["exp_item"] = clicked


def show_maps(entries: dict[str, str], layer: int, color: str) -> pd.DataFrame:
    points = map_points(tuple(entries.items()), layer)
    ranges = explorer_charts.map_ranges(points)
    events = []
    for n, (column, label) in enumerate(zip(st.columns(len(entries)), entries)):
        shown = points[points["checkpoint"] == label]
        figure = explorer_charts.pair_map(shown, color, f"{label} · layer {layer}", ranges)
        events.append(widgets.chart(figure, f"exp_map_{n}", name=f"explorer-map-{n + 1}-layer{layer}", data=shown,
                                    where=column, on_select="rerun", selection_mode="points"))
    handle_click(events, list(points["item_id"].unique()))
    return points


def show_item(items: dict[str, pd.DataFrame], spec: str) -> None:
    first = next(iter(items.values())).set_index("item_id")
    ids = first.index.tolist()
    if st.session_state.get("exp_item") not in ids:  # left over from another item set
        st.session_state.pop("exp_item", None)
    item_id = st.selectbox("Item (or click a point on the map)", ids, key="exp_item",
                           format_func=lambda i: f"{first.loc[i, 'task']} · {first.loc[i, 'question'][:90]}")
    row = first.loc[item_id]
    left, right = st.columns([2, 3])
    left.markdown(f"**{row['question']}**  \n{row['task']} · {row['domain']} · `{item_id}`")
    try:
        audio = sources.item_audio(spec, row["audio_ref"])
        left.audio(audio, sample_rate=16000 if not isinstance(audio, str) else None)
    except Exception as err:  # noqa: BLE001 - a missing clip must not hide the rest of the item
        left.caption(f"No audio for this item: {err}")
    widgets.table(explorer_charts.answer_table(items, item_id), "exp_answers", name="explorer-item-answers",
                  where=right)
    tokens = explorer_charts.item_tokens(items, item_id)
    widgets.chart(explorer_charts.token_kl_bars(tokens), "exp_token_kl", name="explorer-item-token-kl", data=tokens)


def unique_labels(refs: list[dict]) -> list[str]:
    labels = [r["label"] for r in refs]
    return labels if len(set(labels)) == len(labels) else [f"{i + 1}: {label}" for i, label in enumerate(labels)]


def explore(path: str, refs: list[dict], spec: str) -> None:
    try:
        folders = [entry_folder(path, ref, spec) for ref in refs]
    except (ValueError, KeyError, FileNotFoundError, StoreError) as err:
        st.error(str(err))
        return
    if not all(cache.is_complete(f) for f in folders):
        show_missing(path, refs, folders, spec)
        return
    entries = dict(zip(unique_labels(refs), folders))
    frames = {label: entry_frames(folder) for label, folder in entries.items()}
    n_layers = min(n for _, _, n in frames.values())
    left, right = st.columns([3, 1])
    layer = left.slider("Layer (0 = input embeddings)", 0, n_layers - 1, n_layers - 1, key="exp_layer")
    color = right.selectbox("Colour by", list(explorer_charts.COLOR_OPTIONS), key="exp_color",
                            format_func=explorer_charts.COLOR_OPTIONS.get)
    show_maps(entries, layer, color)
    metrics = pd.concat([m.assign(checkpoint=label) for label, (_, m, _) in frames.items()], ignore_index=True)
    widgets.chart(explorer_charts.metric_lines(metrics, layer), "exp_metrics", name="explorer-metrics", data=metrics)
    items = {label: f[0] for label, f in frames.items()}
    per_item = pd.concat([f.drop(columns=["tokens", "token_kl"]).assign(checkpoint=label) for label, f in items.items()])
    widgets.csv_button(per_item, "explorer-items", "Every item: answers and item KL (CSV)", "exp_items_csv")
    st.subheader("Item")
    show_item(items, spec)


def main() -> None:
    st.title("Misalignment explorer")
    st.caption(INTRO)
    path = data.current_store_path()
    try:
        refs = model_refs(path)
    except StoreError as err:
        st.error(str(err))
        return
    if not refs:
        st.info("No model with loadable weights in this store yet. Train one on the Training page (or run "
                "`salad train --preset nano`), or evaluate one with `salad eval`; then come back here to see where "
                "its speech and text representations part.")
        return
    first, second = pick_models(refs)
    spec = pick_item_set(path, first)
    if spec is not None:
        explore(path, [first] if second is None else [first, second], spec)


main()
