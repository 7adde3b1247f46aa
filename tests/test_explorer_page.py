"""The Misalignment explorer: its chart builders (trace values) and the page, headless (AppTest), on stores holding
tiny random models trained on nothing, with their representations of the nano world computed beforehand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import explorer_charts as charts
from salad_core.explore import sources
from salad_core.paths import REPO_ROOT
from salad_core.store import Store
from tests.test_explore import explore_cache, write_model  # noqa: F401 - explore_cache is a fixture

APP = str(REPO_ROOT / "dashboard" / "app.py")
PAGE = "../pages/explorer.py"
SPEC = "world:nano/test@50"  # what the page asks for by default


def add_model(store: Store, root, run_id: str, seed: int):
    """A training run whose final weights are a tiny random model; returns (its reference, the model)."""
    run_dir = root / "runs" / run_id
    model = write_model(run_dir / "final", seed=seed)
    (run_dir / "config.json").write_text(json.dumps({"preset": "nano"}))
    store.create_run("train", {"preset": "nano"}, run_id=run_id,
                     model={"model_id": run_id, "name": f"nano α=1 ({run_id})", "path": str(run_dir / "final")})
    store.finish_run(run_id)
    return sources.find_model(store, str((run_dir / "final").resolve())), model


@pytest.fixture(scope="module")
def nano_world():
    """The page asks for the nano world's test items by default: the world must be built."""
    from salad_core.world import build_world

    return build_world("nano", progress=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory, explore_cache, nano_world):  # noqa: F811
    """Two models; representations of both on the nano world's test items, as the page's job would compute them."""
    from salad_core.explore.representations import ensure_representations

    root = tmp_path_factory.mktemp("explorer")
    store = Store(root / "s.duckdb")
    items = sources.load_item_set(SPEC, store)
    for seed, run_id in enumerate(("train-a", "train-b")):
        ref, model = add_model(store, root, run_id, seed)
        ensure_representations(ref, items, model=model, progress=False)
    return store


pytestmark = pytest.mark.usefixtures("isolated_app")


def open_page(store_path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["store_path"] = str(store_path)
    at.run()
    return at.switch_page(PAGE).run()


# ---------------------------------------------------------------------------------------------------------------
# charts


def points_frame() -> pd.DataFrame:
    rows = []
    for i, (task, kl) in enumerate((("capitals", 0.1), ("capitals", 0.5), ("animals", 2.0))):
        for modality, shift in (("text", 0.0), ("speech", 1.0)):
            rows.append({"item_id": f"i{i}", "task": task, "domain": task, "question": f"question {i}", "kl": kl,
                         "modality": modality, "checkpoint": "A", "x": float(i), "y": shift})
    return pd.DataFrame(rows)


def test_pair_map_joins_each_pair_and_colours_by_category():
    fig = charts.pair_map(points_frame(), "task")
    lines, *markers = fig.data
    assert len(lines.x) == 9 and list(lines.x[3:5]) == [1.0, 1.0] and list(lines.y[3:5]) == [0.0, 1.0]
    assert np.isnan(lines.x[2]) and np.isnan(lines.y[5])  # text -> speech, then a break
    assert [t.name for t in markers] == ["animals · text", "animals · speech", "capitals · text", "capitals · speech"]
    assert markers[2].customdata[:, 0].tolist() == ["i0", "i1"] and markers[1].marker.symbol == "diamond"
    assert "UMAP 1" in fig.layout.xaxis.title.text and fig.layout.legend.title.text == "task"
    by_modality = charts.pair_map(points_frame(), "modality")
    assert [t.name for t in by_modality.data[1:]] == ["text", "speech"]


def test_pair_map_by_kl_uses_one_colour_scale_with_units():
    fig = charts.pair_map(points_frame(), "kl", ranges=([0, 3], [-1, 2]))
    text = fig.data[1]
    assert list(text.marker.color) == [0.1, 0.5, 2.0] and text.marker.cmax == 2.0
    assert "nats/token" in text.marker.colorbar.title.text and list(fig.layout.xaxis.range) == [0, 3]
    with pytest.raises(ValueError, match="Fix"):
        charts.pair_map(points_frame(), "voice")


def test_metric_lines_draw_a_panel_per_metric_and_a_line_per_checkpoint_and_view():
    rows = [{"layer": layer, "view": view, "metric": metric, "value": layer * 0.1, "checkpoint": ckpt}
            for layer in range(3) for view in ("pooled", "aligned") for metric in charts.METRICS
            for ckpt in ("Stage I", "Stage II")]
    fig = charts.metric_lines(pd.DataFrame(rows), layer=1)
    assert len(fig.data) == 4 * 2 * 2
    assert sum(t.showlegend for t in fig.data) == 4  # one legend entry per (checkpoint, view)
    assert list(fig.data[0].x) == [0, 1, 2] and fig.data[0].name == "Stage I · pooled"
    assert fig.layout.annotations[1].text == "norm ratio" and "(×)" in fig.layout.yaxis2.title.text  # units on y


def test_item_frames_collect_answers_and_token_kl_per_checkpoint():
    item = {"item_id": "i0", "choices": ["a", "b", "c"], "answer": 2, "text_pred": 2, "speech_pred": 0,
            "tokens": ["\n", " c"], "token_kl": [0.5, 1.5]}
    items = {"A": pd.DataFrame([item]), "B": pd.DataFrame([{**item, "speech_pred": 2}])}
    table = charts.answer_table(items, "i0")
    assert table["right answer"].tolist() == ["", "", "✓"]
    assert table["A · speech lane"].tolist() == ["✓", "", ""] and table["B · speech lane"].tolist() == ["", "", "✓"]
    tokens = charts.item_tokens(items, "i0")
    assert tokens["kl"].tolist() == [0.5, 1.5, 0.5, 1.5]
    fig = charts.token_kl_bars(tokens)
    assert [t.name for t in fig.data] == ["A", "B"] and "nats/token" in fig.layout.yaxis.title.text


def test_a_click_opens_the_item_of_the_map_whose_selection_changed():
    event = {"selection": {"points": [{"curve_number": 0, "x": 1.0}, {"curve_number": 2, "customdata": ["i7"]}]}}
    assert charts.selected_items(event) == ["i7"] and charts.selected_items(None) == []
    assert charts.newly_clicked([["i7"], []], None) == "i7"
    assert charts.newly_clicked([["i7"], []], [["i7"], []]) is None  # the same selection, rerun: keep the user's pick
    assert charts.newly_clicked([["i7"], ["i2"]], [["i7"], []]) == "i2"
    assert charts.newly_clicked([["i5"], ["i2"]], [["i7"], ["i2"]]) == "i5"


# ---------------------------------------------------------------------------------------------------------------
# page


def test_page_on_an_empty_store_says_what_to_do(tmp_path):
    at = open_page(tmp_path / "empty.duckdb")
    assert not at.exception
    assert "No model with loadable weights" in at.info[0].value


@pytest.mark.usefixtures("nano_world")
def test_a_model_without_representations_offers_to_compute_them(tmp_path, started):
    store = Store(tmp_path / "s.duckdb")
    add_model(store, tmp_path, "train-new", seed=7)
    at = open_page(store.path)
    assert not at.exception
    assert any("not computed yet" in i.value for i in at.info)
    at.button(key="exp_compute").click().run()
    (args, name), kw = started[0], started.options[0]
    assert name == "explore" and kw["module"] == "salad_core.explore"
    assert args[args.index("--items") + 1] == SPEC and "train-new" in args[args.index("--model") + 1]


def test_page_draws_the_map_the_metrics_and_an_item(store):
    at = open_page(store.path)
    assert not at.exception, at.exception
    shown = at.get("plotly_chart")
    assert len(shown) == 3  # map, per-layer metrics, the item's token KL
    assert at.slider(key="exp_layer").value == 2  # the last layer of a 2-layer LLM
    assert at.get("audio")
    assert "option" in at.dataframe[0].value.columns
    at.slider(key="exp_layer").set_value(0).run()
    at.selectbox(key="exp_color").set_value("kl").run()
    assert not at.exception
    items = at.selectbox(key="exp_item")
    items.set_value(items.options[3]).run()
    assert not at.exception


def test_two_checkpoints_share_one_projection_side_by_side(store):
    at = open_page(store.path)
    first, second = (r.ref_id for r in sources.store_models(store))
    assert at.selectbox(key="exp_model").value == first
    at.selectbox(key="exp_compare").set_value(second).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 4  # two maps
    answers = at.dataframe[0].value
    assert sum(c.endswith("speech lane") for c in answers.columns) == 2
