"""Chart builders and the pure view helpers, on frames from the fixture store and on small hand-made frames."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard import charts, views
from salad_core.eval.vocabulary import ALL_TASKS
from tests.conftest import fixture_run


@pytest.fixture
def frames(fixture_store):
    run_id = fixture_run(fixture_store)
    return views.final_metrics(fixture_store.metrics(run_id)), fixture_store.paired_items(run_id)


def metric_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["task", "metric", "value", "ci_low", "ci_high", "n", "step"])


def test_accuracy_bars_draw_each_lane_with_its_interval(frames):
    metrics, paired = frames
    fig = charts.accuracy_bars(metrics, views.chance_levels(paired))
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    assert list(bars) == [charts.LANE_LABELS[lane] for lane in ("base_text", "text", "speech", "cascade")]
    speech = bars[charts.LANE_LABELS["speech"]]
    assert list(speech.x) == ["capitals", "symbols", charts.ALL_LABEL]
    assert list(speech.y) == pytest.approx([2 / 6, 2 / 6, 4 / 12])
    row = metrics.set_index(["task", "metric"]).loc[("capitals", "speech_acc")]
    assert speech.error_y.array[0] == pytest.approx(row["ci_high"] - row["value"])
    assert speech.error_y.arrayminus[0] == pytest.approx(row["value"] - row["ci_low"])
    chance = next(t for t in fig.data if t.name == "chance (1 / options)")
    assert list(chance.y) == pytest.approx([0.25, 0.25, 0.25])
    assert fig.layout.yaxis.title.text == "accuracy (fraction)" and fig.layout.barmode == "group"


def test_gap_split_stacks_forgetting_and_misalignment_in_points(frames):
    metrics, _ = frames
    fig = charts.gap_split_bars(metrics)
    parts = {t.name: t for t in fig.data}
    assert fig.layout.barmode == "relative" and fig.layout.yaxis.title.text.startswith("points")
    assert list(parts["forgetting"].y) == pytest.approx([0, 0, 0])
    assert list(parts["misalignment"].y) == pytest.approx([50, 50, 50])
    gap = parts["gap (total, 95 % CI)"]
    assert list(gap.y) == pytest.approx([50, 50, 50])
    assert gap.error_y.array[2] == pytest.approx(100 * metrics.set_index(["task", "metric"]).loc[
        (ALL_TASKS, "gap"), "ci_high"] - 50)


def test_charts_skip_missing_lanes_and_values():
    metrics = metric_frame([("arc", "text_acc_base", 0.6, None, None, 50, None),
                            ("arc", "speech_acc", 0.3, 0.2, 0.4, 50, None),
                            ("obqa", "speech_acc", 0.5, 0.4, 0.6, 50, None),
                            ("arc", "forgetting", -0.02, None, None, 50, None)])
    fig = charts.accuracy_bars(metrics)
    assert [t.name for t in fig.data] == [charts.LANE_LABELS["base_text"], charts.LANE_LABELS["speech"]]
    base = fig.data[0]
    assert base.error_y.array is None and list(base.x) == ["arc", "obqa"]
    assert base.y[0] == 0.6 and pd.isna(base.y[1])
    split = charts.gap_split_bars(metrics)
    assert split.data[0].y[0] == pytest.approx(-2.0)  # negative forgetting stacks below zero
    assert [t.name for t in split.data] == ["forgetting", "misalignment"]  # no gap rows: no gap marker


def test_final_metrics_prefers_the_end_of_run_value():
    metrics = metric_frame([("arc", "M", 3.0, 2.9, 3.1, 1, 1), ("arc", "M", 2.0, None, None, 1, 7),
                            ("arc", "gap", 0.1, None, None, 1, None), ("arc", "gap", 0.3, 0.2, 0.4, 1, 4)])
    final = views.final_metrics(metrics).set_index("metric")
    assert final.loc["M", "value"] == 2.0 and final.loc["gap", "value"] == 0.1
    assert final[["ci_low", "ci_high"]].isna().all().all()  # never a CI borrowed from another row


def test_the_no_audio_floor_is_a_mark_per_task_and_named_where_speech_is_not_above_it():
    metrics = metric_frame([("arc", "speech_acc", 0.6, 0.5, 0.7, 50, None),
                            ("arc", "noaudio_acc", 0.3, 0.2, 0.4, 50, None),
                            ("arc", "audio_gain", 0.3, 0.15, 0.45, 50, None),
                            ("obqa", "speech_acc", 0.4, 0.3, 0.5, 50, None),
                            ("obqa", "noaudio_acc", 0.38, 0.28, 0.48, 50, None),
                            ("obqa", "audio_gain", 0.02, -0.05, 0.09, 50, None)])
    fig = charts.accuracy_bars(metrics)
    assert [t.name for t in fig.data if t.type == "bar"] == [charts.LANE_LABELS["speech"]]  # the floor is no bar
    floor = next(t for t in fig.data if t.type == "scatter")
    assert floor.name.startswith("floor: ") and list(floor.y) == pytest.approx([0.3, 0.38])
    assert floor.error_y.arrayminus[0] == pytest.approx(0.1)
    assert views.audio_unused(metrics) == ["obqa"]
    assert views.audio_unused(metrics[metrics["metric"] != "audio_gain"]) == []  # no floor measured: no claim


def test_not_above_chance_uses_the_interval_or_the_binomial_error(frames):
    metrics, paired = frames
    chance = views.chance_levels(paired)
    assert chance.to_dict() == pytest.approx({"capitals": 0.25, "symbols": 0.25, ALL_TASKS: 0.25})
    assert views.not_above_chance(metrics, chance) == [ALL_TASKS, "capitals", "symbols"]
    assert views.not_above_chance(metrics, chance, metric="text_acc") == []
    by_n = metric_frame([("arc", "speech_acc", 0.27, None, None, 400, None),  # 0.9 SE above 0.25
                         ("piqa", "speech_acc", 0.60, None, None, 400, None),  # 4 SE above 0.5
                         ("obqa", "speech_acc", 0.00, 0.0, 0.0, 3, None),  # below chance, degenerate CI
                         ("hs", "speech_acc", 0.25, None, None, None, None)])  # no CI, no n: no verdict
    chance = pd.Series({"arc": 0.25, "piqa": 0.5, "obqa": 0.25, "hs": 0.25})
    assert views.not_above_chance(by_n, chance) == ["arc", "obqa"]


def test_item_filters_and_tables(frames):
    _, paired = frames
    assert len(views.filter_items(paired)) == 12
    assert len(views.filter_items(paired, "capitals", "speech", "wrong")) == 4
    assert len(views.filter_items(paired, None, "text", "correct")) == 10
    lost = views.filter_items(paired, None, outcome="text right, speech wrong")
    assert set(lost["item_id"]) == {f"{t}@1/{i}" for t in ("capitals", "symbols") for i in (2, 3, 4)}
    with pytest.raises(ValueError, match="Unknown outcome filter 'bad'"):
        views.filter_items(paired, outcome="bad")
    table = views.item_table(paired)
    first = table.iloc[0]
    assert first["answer"] == "Paris" and first["speech"] == "✓" and first["cascade WER"] == pytest.approx(0.2)
    assert table.iloc[2]["speech"] == "✗" and list(table.columns[4:8]) == ["base_text", "text", "speech", "cascade"]


def test_option_table_marks_answer_and_picks(fixture_store, frames):
    _, paired = frames
    item = paired.set_index("item_id").loc["symbols@1/5"]
    scores = fixture_store.option_scores(fixture_run(fixture_store), "symbols@1/5")
    table = views.option_table(item, scores)
    assert table["option"].tolist() == item["choices"]
    assert table.loc[item["answer"], "answer"] == "✓"
    assert table["text pick"].tolist().index("●") == (item["answer"] + 1) % 4
    assert table["speech log-prob"].idxmax() == (item["answer"] + 1) % 4


def test_progress_labels():
    assert views.progress_label(None) == "starting…"
    label = views.progress_label({"stage": "scoring items", "done": 12, "total": 50, "fraction": 0.24,
                                  "eta_s": 65.2, "message": "capitals"})
    assert label == "scoring items: 12 / 50 (24 %) · ETA 1 min 05 s · capitals"
    assert views.progress_label({"stage": "reading", "done": 3, "total": None, "fraction": None}) == "reading: 3 done"
    assert views.format_seconds(7322) == "2 h 02 min" and views.format_seconds(None) == "unknown"


def test_model_label_skips_missing_names():
    assert views.model_label(pd.Series({"model_name": float("nan"), "model_id": "smol"})) == "smol"
    assert views.model_label(pd.Series({"model_name": None, "model_id": None})) == "unknown model"
    assert views.model_label(pd.Series({"model_name": "SALAD-3B", "model_id": "x"})) == "SALAD-3B"


def test_figure_data_lists_every_drawn_point_with_its_interval_and_axis_units(frames):
    metrics, paired = frames
    drawn = charts.figure_data(charts.accuracy_bars(metrics, views.chance_levels(paired)))
    speech = drawn[drawn["series"] == charts.LANE_LABELS["speech"]].set_index("x")
    row = metrics[(metrics["task"] == "capitals") & (metrics["metric"] == "speech_acc")].iloc[0]
    assert speech.loc["capitals", "y"] == pytest.approx(row["value"])
    assert speech.loc["capitals", ["y_low", "y_high"]].tolist() == pytest.approx([row["ci_low"], row["ci_high"]])
    assert set(drawn["y_axis"]) == {"accuracy (fraction)"} and set(drawn["x_axis"]) == {"task"}
    chance = drawn[drawn["series"] == "chance (1 / options)"]
    assert len(chance) == 3 and chance["y_low"].isna().all()  # capitals, symbols, all tasks; no error bar


def test_figure_data_reads_secondary_axes_colour_values_and_skips_line_breaks():
    from dashboard import explorer_charts, selection_charts

    clusters = pd.DataFrame({"cluster": [0, 1], "domain": ["stories", "capitals"], "m": [2.0, 0.5],
                             "filtered": [False, False], "p_web": [0.5, 0.5], "p_target": [0.9, 0.1]})
    drawn = charts.figure_data(selection_charts.misalignment_bars(clusters))
    assert set(drawn.loc[drawn["series"].str.startswith("P_target"), "y_axis"]) == {"probability (fraction)"}
    assert set(drawn.loc[drawn["series"].str.startswith("M(c)"), "y_axis"]) == {"M(c) (nats/token)"}
    points = pd.DataFrame({"item_id": ["a", "a", "b", "b"], "modality": ["text", "speech"] * 2,
                           "x": [0.0, 1.0, 2.0, 3.0], "y": [0.0, 1.0, 0.0, 1.0], "kl": [0.5, 0.5, 2.0, 2.0],
                           "question": ["q a"] * 2 + ["q b"] * 2, "task": "t", "domain": "d"})
    drawn = charts.figure_data(explorer_charts.pair_map(points, "kl"))
    lines = drawn[drawn["series"].str.startswith("pair")]
    assert len(lines) == 4  # two pairs, two ends each; the NaN breaks between pairs are not points
    speech = drawn[drawn["series"].str.startswith("speech")]
    assert speech["colour"].tolist() == [0.5, 2.0] and set(speech["colour_means"]) == {explorer_charts.KL_TITLE}
    assert speech["label"].str.contains("item KL = 2.000").any()


def test_png_config_names_the_file():
    config = charts.png_config("run-1-accuracy")
    assert config["toImageButtonOptions"] == {"format": "png", "filename": "run-1-accuracy", "scale": 2}
