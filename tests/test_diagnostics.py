"""A round's probes scored again by other models (select/diagnostics.py), on the round the real commands made
(the session's pipeline: a round from the α = 1 Stage I run, and the Stage II run trained on it)."""

from __future__ import annotations

import math
import shutil

import pytest

from salad_core.errors import InputError
from salad_core.store import Store


@pytest.fixture
def scored(pipeline, ray_cluster, tmp_path, monkeypatch):
    """The round's probes scored by its own model and by the Stage II model, into a copy of the pipeline's store."""
    import ray

    from salad_core.select.diagnostics import score_probes

    monkeypatch.setenv("SALAD_DATA", str(pipeline.data))
    store = Store(shutil.copyfile(pipeline.store.path, tmp_path / "s.duckdb"))
    try:
        yield store, {model: score_probes(store, pipeline.round_id, model, ray_cluster)
                      for model in (pipeline.alpha1, pipeline.stage2)}
    finally:
        ray.shutdown()


def test_the_rounds_own_model_gives_back_its_m_and_the_stage2_model_its_own(pipeline, scored):
    store, rows = scored
    measured = store.selection_clusters(pipeline.round_id).dropna(subset=["m"]).set_index("cluster")
    again = {r["cluster"]: r for r in rows[pipeline.alpha1]}
    assert sorted(again) == sorted(measured.index)  # every cluster with spoken probes
    for cluster, row in measured.iterrows():
        assert again[cluster]["m"] == pytest.approx(row["m"], rel=1e-4)
        assert again[cluster]["m_tokens"] == row["m_tokens"]
    after = {r["cluster"]: r for r in rows[pipeline.stage2]}
    assert sorted(after) == sorted(again) and all(math.isfinite(r["m"]) for r in after.values())
    assert [after[c]["m"] for c in sorted(after)] != pytest.approx([again[c]["m"] for c in sorted(again)])
    stored = store.probe_scores(pipeline.round_id)
    assert stored.groupby("model")["cluster"].count().to_dict() == {pipeline.alpha1: len(again),
                                                                     pipeline.stage2: len(after)}


def test_a_model_that_is_not_saved_is_named_with_the_fix(pipeline, monkeypatch):
    from salad_core.select.diagnostics import model_folder

    monkeypatch.setenv("SALAD_DATA", str(pipeline.data))
    assert model_folder(pipeline.alpha1) == pipeline.final(pipeline.alpha1)
    with pytest.raises(InputError, match="RUN/step-NNNNNN"):
        model_folder(f"{pipeline.alpha1}/step-999999")
