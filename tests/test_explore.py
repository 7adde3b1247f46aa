"""The misalignment explorer's library: metrics against hand-computed values, item sets and model references, the
representation cache on the `nano` world with a tiny random model, and the shared UMAP projection."""

from __future__ import annotations

import json

import numpy as np
import pytest

from salad_core import maps
from salad_core.explore import cache, projection, sources
from salad_core.explore import metrics as m
from salad_core.store import Store


@pytest.fixture(scope="module")
def explore_cache(tmp_path_factory):
    """Representation and UMAP caches in a folder of this module (the world and models stay in the shared cache)."""
    root = tmp_path_factory.mktemp("explore_cache")

    def cache_dir(kind: str):
        path = root / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cache, "cache_dir", cache_dir)
        patch.setattr(maps, "cache_dir", cache_dir)
        yield root


# ---------------------------------------------------------------------------------------------------------------
# metrics


def test_pair_cosine_and_norm_ratio_on_known_vectors():
    text = np.array([[1.0, 0.0], [1.0, 1.0], [3.0, 4.0]])
    speech = np.array([[0.0, 1.0], [2.0, 2.0], [-6.0, -8.0]])
    assert m.pair_cosines(text, speech) == pytest.approx([0.0, 1.0, -1.0])
    assert m.norm_ratios(text, speech) == pytest.approx([1.0, 2.0, 2.0])
    values = m.layer_metrics(text, speech)
    assert values["pair_cosine"] == pytest.approx(0.0) and values["norm_ratio"] == pytest.approx(5 / 3)


def test_modality_gap_is_the_distance_between_unit_vector_centroids():
    text = np.array([[1.0, 0.0], [5.0, 0.0]])
    speech = np.array([[0.0, 2.0], [0.0, 0.5]])
    assert m.modality_gap(text, speech) == pytest.approx(np.sqrt(2))
    assert m.modality_gap(text, 7 * text) == pytest.approx(0.0)  # lengths do not matter, directions do
    mixed = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert m.modality_gap(text, mixed) == pytest.approx(np.linalg.norm([0.5, -0.5]))


def test_linear_cka_hand_computed_and_its_invariances():
    # 1-D: CKA is the squared correlation; x = 1,2,3 and y = 1,3,2 correlate at 1/2
    assert m.linear_cka(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [3.0], [2.0]])) == pytest.approx(0.25)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert m.linear_cka(x, x) == pytest.approx(1.0)
    assert m.linear_cka(x, 3.5 * x @ rotation + 2.0) == pytest.approx(1.0)  # rotation, isotropic scale, shift
    assert m.linear_cka(x, x * np.array([1, 1, 1, 1, 1, 10.0])) < 0.9  # anisotropic scaling is not ignored
    assert m.linear_cka(x, rng.normal(size=(200, 6))) < 0.15  # independent clouds


def test_metrics_refuse_unpaired_rows_and_name_the_fix():
    with pytest.raises(ValueError, match="Fix"):
        m.pair_cosines(np.ones((3, 2)), np.ones((4, 2)))


def test_item_kl_averages_each_items_positions():
    kl = m.item_kl(np.array([1.0, 3.0, 2.0]), np.array([0, 0, 2]), 3)
    assert kl[0] == pytest.approx(2.0) and np.isnan(kl[1]) and kl[2] == pytest.approx(2.0)


# ---------------------------------------------------------------------------------------------------------------
# item sets and model references


def test_item_set_specs_round_trip_and_bad_ones_are_refused():
    spec = sources.ItemSetSpec.parse("world:nano/test@20")
    assert (spec.source, spec.name, spec.split, spec.limit) == ("world", "nano", "test", 20)
    assert str(spec) == "world:nano/test@20"
    assert str(sources.ItemSetSpec.parse("run:eval-1")) == "run:eval-1"
    for bad in ("nano", "world:nano/train", "disk:x"):
        with pytest.raises(ValueError, match="Fix"):
            sources.ItemSetSpec.parse(bad)


def write_model(folder, seed: int = 0):
    from tests.tiny_models import tiny_salad

    model = tiny_salad(seed=seed)
    model.save_pretrained(folder)
    return model


def test_store_models_merge_evaluations_list_checkpoints_and_skip_missing_weights(tmp_path):
    run_dir = tmp_path / "runs" / "train-a"
    write_model(run_dir / "final")
    write_model(run_dir / "checkpoints" / "step-000004")
    (run_dir / "checkpoints" / "step-000004" / "meta.json").write_text(json.dumps({"step": 4}))  # complete
    write_model(run_dir / "checkpoints" / "step-000006")  # no meta.json: interrupted while saving, left out
    (run_dir / "config.json").write_text(json.dumps({"preset": "nano"}))
    store = Store(tmp_path / "s.duckdb")
    store.create_run("train", {"preset": "nano"}, run_id="train-a",
                     model={"model_id": "train-a", "name": "nano α=1 (train-a)", "path": str(run_dir / "final")})
    store.create_run("eval", {"model_path": str(run_dir / "final")},
                     model={"model_id": str(run_dir / "final"), "name": str(run_dir / "final"),
                            "path": str(run_dir / "final")})
    store.create_run("train", {}, model={"model_id": "gone", "path": str(tmp_path / "nowhere")})
    store.create_run("eval", {"preset": "smol", "seed": 3}, model={"model_id": "smol (untrained)", "path": None})
    refs = {r.ref_id: r for r in sources.store_models(store)}
    final = str((run_dir / "final").resolve())
    assert refs[final].label == "nano α=1 (train-a)" and refs[final].preset == "nano"
    step = str((run_dir / "checkpoints" / "step-000004").resolve())
    assert refs[step].step == 4 and refs[step].label.endswith("step 4")
    assert refs["eval:smol (untrained)"].build_config["seed"] == 3
    assert len(refs) == 3  # the model without weights is left out
    assert sources.find_model(store, step).step == 4
    with pytest.raises(KeyError, match="Fix"):
        sources.find_model(store, "nowhere")


def test_model_key_follows_the_weights(tmp_path):
    write_model(tmp_path / "a", seed=0)
    write_model(tmp_path / "b", seed=1)
    write_model(tmp_path / "c", seed=0)
    key = {n: sources.model_key(sources.ModelRef(str(tmp_path / n), n, "tiny", str(tmp_path / n))) for n in "abc"}
    assert key["a"] != key["b"] and key["a"].split("-")[-1] == key["c"].split("-")[-1]


# ---------------------------------------------------------------------------------------------------------------
# representations on the nano world


@pytest.fixture(scope="module")
def nano_items():
    from salad_core.world import build_world

    build_world("nano", progress=False)
    return sources.load_item_set("world:nano/test@2")


@pytest.fixture(scope="module")
def tiny_entry(tmp_path_factory, explore_cache, nano_items):
    from salad_core.explore.representations import ensure_representations

    folder = tmp_path_factory.mktemp("tiny") / "final"
    model = write_model(folder)
    ref = sources.ModelRef(str(folder), "tiny", "tiny", str(folder))
    return model, ref, ensure_representations(ref, nano_items, model=model, k_shot=1, progress=False)


def test_nano_item_set_pairs_each_question_with_its_spoken_clip(nano_items):
    assert len(nano_items.items) == 12  # 6 domains x 2
    assert all(p.audio_ref.startswith("q") for p in nano_items.items)
    assert sources.load_item_set("world:nano/test@2").digest == nano_items.digest
    assert sources.load_item_set("world:nano/test@3").digest != nano_items.digest


def test_representations_have_every_layer_for_every_item(tiny_entry, nano_items):
    model, _, entry = tiny_entry
    layers = model.llm.config.num_hidden_layers + 1
    hidden = model.llm.config.hidden_size
    assert entry.n_layers == layers
    for key in ("text", "speech"):
        stacked = np.stack([entry.layer(layer)[key] for layer in range(layers)])
        assert stacked.shape == (layers, 12, hidden) and np.isfinite(stacked).all()
    tokens = entry.tokens()
    assert entry.layer(0)["text_tokens"].shape == (tokens["item"].size, hidden)
    assert np.bincount(tokens["item"], minlength=12).tolist() == entry.items["n_positions"].tolist()
    assert (tokens["kl"] >= 0).all()
    items = entry.items
    assert items["item_id"].tolist() == [p.item_id for p in nano_items.items]
    assert all(0 <= p < len(c) for p, c in zip(items["speech_pred"], items["choices"]))
    metrics = entry.metrics
    assert len(metrics) == layers * 2 * len(m.METRICS) and metrics["value"].notna().all()
    with pytest.raises(IndexError, match="Fix"):
        entry.layer(layers)


def test_layer_zero_text_is_the_mean_embedding_of_the_question(tiny_entry, nano_items):
    model, _, entry = tiny_entry
    item = nano_items.items[0].item
    ids = model.tokenizer(" " + item.question, add_special_tokens=False, return_tensors="pt").input_ids[0]
    expected = model.embed_text(ids).mean(0).detach().numpy()
    assert entry.layer(0)["text"][0] == pytest.approx(expected, abs=1e-5)


def test_item_kl_sums_to_the_evaluations_m_on_the_same_probe(tiny_entry, nano_items):
    """Positions before the question are left out of the explorer; there both views agree, so nothing is lost."""
    from salad_core.eval.divergence import probe_divergence
    from salad_core.explore.representations import probe_segments

    model, _, entry = tiny_entry
    for index in (0, 5):
        paired = nano_items.items[index]
        embeds = model.adapt_frames(nano_items.frames(model.encoder, [paired]))
        reference = probe_divergence(model, probe_segments(paired.item), embeds)
        row = entry.items.iloc[index]
        assert sum(row["token_kl"]) == pytest.approx(reference.m_sum, rel=1e-4, abs=1e-6)
        assert row["kl"] == pytest.approx(np.mean(row["token_kl"]))


def test_a_cached_entry_is_read_back_without_loading_the_model(tiny_entry, nano_items, monkeypatch):
    from salad_core.explore import representations

    _, ref, entry = tiny_entry
    monkeypatch.setattr(representations, "load_model", lambda ref: pytest.fail("recomputed a cached entry"))
    again = representations.ensure_representations(ref, nano_items, k_shot=1, progress=False)
    assert again.folder == entry.folder
    for layer in range(entry.n_layers):
        first, second = entry.layer(layer), again.layer(layer)
        assert all(np.array_equal(first[k], second[k]) for k in cache.LAYER_ARRAYS)


# ---------------------------------------------------------------------------------------------------------------
# projection


def test_cosine_knn_matches_brute_force_and_puts_each_point_first():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(50, 8))
    indices, distances = maps.cosine_knn(points, 5, chunk=7)
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    brute = np.argsort(1 - unit @ unit.T, axis=1)[:, :5]
    assert (indices[:, 0] == np.arange(50)).all() and (indices == brute).all()
    assert distances[:, 0] == pytest.approx(0, abs=1e-6) and (np.diff(distances, axis=1) >= 0).all()


def test_map_points_projects_every_view_of_both_checkpoints_together(tiny_entry, monkeypatch):
    _, _, entry = tiny_entry
    points = projection.map_points({"A": entry, "B": entry}, layer=1)
    assert len(points) == 2 * 2 * 12 and set(points["modality"]) == {"text", "speech"}
    assert np.isfinite(points[["x", "y"]].to_numpy()).all()
    a, b = points[points["checkpoint"] == "A"], points[points["checkpoint"] == "B"]
    # the same states in both checkpoints land in the same neighbourhood of the shared map
    spread = np.ptp(points["x"]) + np.ptp(points["y"])
    assert np.abs(a[["x", "y"]].to_numpy() - b[["x", "y"]].to_numpy()).max() < spread / 4
    import umap

    monkeypatch.setattr(umap, "UMAP", lambda **_: pytest.fail("a cached projection was fitted again"))
    again = projection.map_points({"A": entry, "B": entry}, layer=1)
    assert np.array_equal(again[["x", "y"]].to_numpy(), points[["x", "y"]].to_numpy())
    with pytest.raises(ValueError, match="Fix"):
        maps.project(np.ones((3, 4)))
