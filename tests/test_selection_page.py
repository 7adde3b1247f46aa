"""Stage II reporting (salad_core.select.report), the Active selection charts (trace values) and the page, headless
(AppTest), on a small hand-built store: a Stage I run, a round with four clusters, a Stage II run on it, and final
evaluations of both. Starting a round is recorded (jobs.start_job replaced), not run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import selection_charts as charts
from salad_core import compare
from salad_core.paths import REPO_ROOT
from salad_core.select import report
from salad_core.select.config import SelectConfig
from salad_core.store import Store

APP = str(REPO_ROOT / "dashboard" / "app.py")
PAGE = "../pages/selection.py"
# cluster, domain mix of its 10 texts, M, CER, filtered, P_target
CLUSTERS = [(0, {"stories": 10}, 2.0, 0.1, False, 0.8), (1, {"elements": 6, "stories": 4}, 3.0, 0.9, True, 0.0),
            (2, {"capitals": 10}, 0.5, 0.1, False, 0.05), (3, {"capitals": 5, "calendar": 5}, 1.0, 0.2, False, 0.15)]
TASKS = ("mini-capitals", "mini-stories")


def final_eval(store: Store, train_run: str, speech: dict[str, float]) -> None:
    run = store.create_run("eval", {"model_path": f"/data/runs/{train_run}/final"}, parent_run=train_run)
    store.add_metrics(run, [{"task": t, "metric": "speech_acc", "value": v, "ci_low": v - 0.05, "ci_high": v + 0.05,
                             "n": 100} for t, v in speech.items()])
    store.finish_run(run)


def build_store(path, with_round: bool = True) -> Store:
    store = Store(path)
    stage1 = store.create_run("train", {"preset": "mini", "alpha": 1.0, "stage": 1}, model={"model_id": "s1"})
    store.finish_run(stage1)
    final_eval(store, stage1, {"mini-capitals": 0.44, "mini-stories": 0.18})
    if not with_round:
        return store
    round_id = store.create_run("select", {"from_run": stage1, "gamma": 5.0, "strategy": "active", "budget": "20%",
                                           "budget_hours": 0.27}, parent_run=stage1)
    members, selected, idx = [], [], 0
    rows = []
    for cluster, mix, m, cer, filtered, p_target in CLUSTERS:
        for domain, count in mix.items():
            for _ in range(count):
                members.append({"text_key": idx, "role": "member", "cluster": cluster, "domain": domain,
                                "text": f"text {idx} about {domain}", "x": float(cluster), "y": float(idx % 7)})
                idx += 1
        rows.append({"cluster": cluster, "size": 10, "p_web": 0.25, "m": m, "m_distill": m + 0.1, "cer": cer,
                     "filtered": filtered, "p_target": p_target, "n_probes": 2, "n_selected": 0, "domain": None})
    for i, key in enumerate([0, 1, 2, 30]):  # three stories texts (cluster 0), one capitals (cluster 3)
        member = members[key]
        selected.append({**member, "role": "selected", "doc_id": f"sel0-{i:05d}", "seconds": 10.0, "x": None, "y": None})
    store.add_selection_clusters(round_id, rows)
    store.add_selection_texts(round_id, members + selected)
    counts = pd.DataFrame(members).groupby(["cluster", "domain"]).size().rename("size").reset_index()
    store.add_selection_domains(round_id, counts.to_dict("records"))
    store.finish_run(round_id)
    stage2 = store.create_run("train", {"preset": "mini", "alpha": 1.0, "stage": 2, "from_run": stage1,
                                        "round_id": round_id}, model={"model_id": "s2"}, parent_run=round_id)
    store.finish_run(stage2)
    final_eval(store, stage2, {"mini-capitals": 0.46, "mini-stories": 0.35})
    return store


def add_second_round(store: Store) -> tuple[str, str]:
    """Round 2: scored by the Stage II model of round 1; its Stage II continues the Stage I run. (round, Stage II)"""
    stage1 = store.runs("train").sort_values("created_at")["run_id"].iloc[0]
    first_round = store.runs("select")["run_id"].iloc[0]
    stage2 = store.runs("train").sort_values("created_at")["run_id"].iloc[1]
    round_id = store.create_run("select", {"from_run": stage2, "gamma": 5.0, "strategy": "active", "budget": "5%",
                                           "budget_hours": 0.07}, parent_run=stage2)
    store.finish_run(round_id)
    again = store.create_run("train", {"preset": "mini", "alpha": 1.0, "stage": 2, "from_run": stage1,
                                       "round_id": round_id}, model={"model_id": "s3"}, parent_run=round_id)
    store.finish_run(again)
    final_eval(store, again, {"mini-capitals": 0.47, "mini-stories": 0.41})
    assert first_round != round_id
    return round_id, again


@pytest.fixture
def store(tmp_path) -> Store:
    return build_store(tmp_path / "salad.duckdb")


pytestmark = pytest.mark.usefixtures("isolated_app")


def round_frames(store: Store) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    round_id = store.runs("select")["run_id"].iloc[0]
    return round_id, store.selection_clusters(round_id), store.selection_texts(round_id)


# ---------------------------------------------------------------------------------------------------------------
# report


def test_domain_allocation_splits_p_target_over_each_clusters_domains(store):
    round_id, clusters, texts = round_frames(store)
    table = report.domain_allocation(clusters, store.selection_domains(round_id), texts[texts["role"] == "selected"])
    table = table.set_index("domain")
    assert table.loc["stories", "p_web"] == pytest.approx(14 / 40)
    # stories: all of cluster 0 (0.8) + 40 % of cluster 1 (filtered, 0); calendar: half of cluster 3 (0.15)
    assert table.loc["stories", "p_target"] == pytest.approx(0.8)
    assert table.loc["calendar", "p_target"] == pytest.approx(0.075)
    assert table.loc["stories", "selected_share"] == pytest.approx(0.75)
    assert table["p_target"].sum() == pytest.approx(1.0) and table["selected_share"].sum() == pytest.approx(1.0)
    assert report.uncovered_share(table.reset_index(), {"capitals"}) == pytest.approx(0.75)


def test_preview_allocation_recomputes_p_target_at_another_gamma_and_threshold(store):
    _, clusters, _ = round_frames(store)
    uniform = report.preview_allocation(clusters, 0.0)
    assert uniform["p_target"].tolist() == pytest.approx([1 / 3, 0.0, 1 / 3, 1 / 3])
    lenient = report.preview_allocation(clusters, 1.0, cer_max=1.0)  # cluster 1 (CER 0.9) comes back
    assert not lenient["filtered"].any()
    assert lenient["p_target"].tolist() == pytest.approx(np.array([2.0, 3.0, 0.5, 1.0]) / 6.5)


def test_rounds_table_and_gains(store):
    rounds = report.rounds_table(store.runs("select"), store.runs("train"))
    assert rounds["label"].tolist() == ["active γ=5 · 20%"] and rounds["stage2_runs"].iloc[0].startswith("train-")
    stage1, stage2 = store.runs("train").sort_values("created_at")["run_id"]
    comparison = report.task_comparison({"I": compare.final_evaluation(store, stage1),
                                         "II": compare.final_evaluation(store, stage2)})
    gains = report.gains(comparison, "I").set_index("task")["II"]
    assert gains.to_dict() == pytest.approx({"mini-capitals": 0.02, "mini-stories": 0.17})


def test_rounds_table_numbers_each_round_in_its_stage1_lineage(store):
    stage1, stage2 = store.runs("train").sort_values("created_at")["run_id"]
    second, _ = add_second_round(store)
    other = store.create_run("train", {"preset": "mini", "stage": 1})  # another Stage I run's round
    store.create_run("select", {"from_run": other, "gamma": 0.0, "strategy": "active", "budget": "1%"}, parent_run=other)
    rounds = report.rounds_table(store.runs("select"), store.runs("train")).set_index("round_id")
    assert rounds.loc[second, ["round", "stage1_run", "from_run"]].tolist() == [2, stage1, stage2]
    first = rounds[(rounds["stage1_run"] == stage1) & (rounds["round"] == 1)]
    assert first["from_run"].tolist() == [stage1]
    assert rounds[rounds["from_run"] == other][["round", "stage1_run"]].values.tolist() == [[1, other]]


def test_paired_speech_difference_pairs_the_items_of_the_chosen_domains(tmp_path):
    store = Store(tmp_path / "pairs.duckdb")
    items = [{"item_id": f"i{k}", "task": f"mini-{d}", "task_version": "1", "doc_id": str(k), "split": "test",
              "question": "q", "choices": ["a", "b"], "answer": 0, "domain": d}
             for k, d in enumerate(["stories"] * 4 + ["capitals"] * 2)]
    store.upsert_items(items)
    runs = {}
    for name, right in (("a", {"i0", "i1", "i2", "i4"}), ("b", {"i0", "i4", "i5"})):
        runs[name] = store.create_run("train", {"preset": "mini"})
        run = store.create_run("eval", {"model_path": f"/data/runs/{runs[name]}/final"}, parent_run=runs[name])
        store.add_outputs(run, [{"item_id": i["item_id"], "lane": "speech", "pred": 0, "correct": i["item_id"] in right,
                                 "correct_norm": i["item_id"] in right} for i in items])
    later = store.create_run("eval", {"model_path": f"/data/runs/{runs['a']}/final", "limit": 1},
                             parent_run=runs["a"])  # a re-evaluation
    store.add_outputs(later, [{"item_id": "i3", "lane": "speech", "pred": 0, "correct": True, "correct_norm": True}])
    uncovered = report.paired_speech_difference(store, runs["a"], runs["b"], {"stories", "calendar"})
    covered = report.paired_speech_difference(store, runs["a"], runs["b"], {"capitals"})
    assert (uncovered.value, uncovered.n) == (0.5, 4) and uncovered.ci_low <= 0.5 <= uncovered.ci_high
    assert (covered.value, covered.n) == (-0.5, 2)
    with pytest.raises(ValueError, match="no final evaluation"):
        report.paired_speech_difference(store, runs["a"], "train-missing", {"stories"})


def test_pooled_paired_difference_averages_the_comparisons_per_item():
    def frame(correct: list[int], domains: list[str] | None = None) -> pd.DataFrame:
        domains = domains or ["stories"] * len(correct)
        return pd.DataFrame({"domain": domains, "correct": [float(c) for c in correct]},
                            index=[f"i{k}" for k in range(len(correct))])

    one = (frame([1, 1, 0, 0]), frame([0, 1, 0, 0]))        # +1/4
    two = (frame([1, 0, 1, 1]), frame([1, 0, 0, 1]))        # +1/4, on another item
    three = (frame([0, 0, 0, 0]), frame([0, 0, 1, 0]))      # -1/4
    pooled = report.pooled_paired_difference([one, two, three], {"stories"})
    assert pooled.value == pytest.approx(1 / 12) and pooled.n == 4
    assert report.pooled_paired_difference([one], {"stories"}).value == report.paired_difference(*one, {"stories"}).value
    # items missing from one comparison, or of other domains, are left out of every comparison
    short = (frame([1, 1, 0], ["stories", "stories", "capitals"]), frame([0, 1, 0], ["stories", "stories", "capitals"]))
    assert report.pooled_paired_difference([one, short], {"stories"}).n == 2


def correctness(correct: list[int], domains: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"domain": domains, "correct": [float(c) for c in correct]},
                        index=[f"i{k}" for k in range(len(correct))])


def test_equal_budget_pairs_match_strategy_on_budget_seed_synthetic_share_and_length():
    def round_row(round_id, gamma, budget, seed, runs, strategy="active", status="done"):
        return {"round_id": round_id, "from_run": "s1", "strategy": strategy, "gamma": gamma, "budget_hours": budget,
                "seed": seed, "status": status, "created_at": round_id, "stage2_runs": ", ".join(runs)}

    rounds = pd.DataFrame([round_row("r1", 5.0, 0.5, 0, ["t1", "t5", "t7"]), round_row("r2", 0.0, 0.5, 0, ["t2"]),
                           round_row("r3", 0.0, 0.5, 1, ["t3"]),           # another seed: no active partner
                           round_row("r4", 0.0, 0.1, 0, ["t4"], strategy="random"),
                           round_row("r5", 0.0, 0.5, 0, ["t6", "t8"])])    # more uniform runs for the pairs
    plans = pd.Series({"t1": {"synthetic_prob": 0.1668}, "t2": {"synthetic_prob": 0.1667},
                         "t3": {"synthetic_prob": 0.1667}, "t4": {}, "t5": {"synthetic_prob": 0.5},
                         "t6": {"synthetic_prob": 0.5}, "t7": {"synthetic_prob": 0.5, "max_steps": 480},
                         "t8": {"synthetic_prob": 0.5, "max_steps": 480}})
    pairs = report.equal_budget_pairs(rounds, plans)
    assert [(p["active"], p["uniform"], p["synthetic_prob"], p["steps"]) for p in pairs] == \
        [("t1", "t2", 0.17, None), ("t5", "t6", 0.5, None), ("t7", "t8", 0.5, 480)]  # a longer Stage II: its own pair


def test_equal_budget_table_has_a_row_per_pair_and_the_pooled_estimate_last():
    domains = ["stories", "stories", "capitals", "capitals"]
    correct = {"a1": correctness([1, 1, 1, 0], domains), "u1": correctness([0, 1, 1, 1], domains),
               "a2": correctness([1, 0, 1, 1], domains), "u2": correctness([1, 0, 1, 1], domains)}
    pairs = [{"active": "a1", "uniform": "u1", "budget_hours": 0.5, "seed": 0, "synthetic_prob": 0.17},
             {"active": "a2", "uniform": "u2", "budget_hours": 0.1, "seed": 0, "synthetic_prob": 0.05}]
    table = report.equal_budget_table(pairs, correct, {"uncovered": {"stories"}, "covered": {"capitals"}})
    assert table["pair"].tolist() == ["a1 − u1", "a2 − u2", "pooled over 2 pairs"]
    assert table["uncovered"].tolist() == pytest.approx([0.5, 0.0, 0.25])
    assert table["covered"].tolist() == pytest.approx([-0.5, 0.0, -0.25])
    assert (table["uncovered low"] <= table["uncovered"]).all() and (table["uncovered"] <= table["uncovered high"]).all()


# ---------------------------------------------------------------------------------------------------------------
# charts


def test_cluster_map_marks_filtered_clusters_and_selected_texts(store):
    _, clusters, texts = round_frames(store)
    fig = charts.cluster_map(texts[texts["role"] == "member"], clusters, texts[texts["role"] == "selected"])
    kept, filtered, picked = fig.data
    assert len(kept.x) == 30 and len(filtered.x) == 10 and filtered.marker.symbol == "x"
    assert len(picked.x) == 4
    assert set(kept.marker.color) == {2.0, 0.5, 1.0}  # coloured by the cluster's M
    assert "UMAP" in fig.layout.xaxis.title.text


def test_misalignment_bars_sort_by_m_and_show_both_distributions(store):
    _, clusters, _ = round_frames(store)
    fig = charts.misalignment_bars(clusters)
    bars, p_web, p_target = fig.data
    assert list(bars.y) == [3.0, 2.0, 1.0, 0.5] and bars.marker.color[0] == charts.FILTERED_COLOR
    assert list(p_target.y) == [0.0, 0.8, 0.15, 0.05] and list(p_web.y) == [0.25] * 4
    assert fig.layout.yaxis.title.text == "M(c) (nats/token)"


def test_task_comparison_bars_carry_confidence_intervals(store):
    stage1, stage2 = store.runs("train").sort_values("created_at")["run_id"]
    comparison = report.task_comparison({"I": compare.final_evaluation(store, stage1),
                                         "II": compare.final_evaluation(store, stage2)})
    fig = charts.task_comparison_bars(comparison, "t")
    assert [t.name for t in fig.data] == ["I", "II"] and list(fig.data[1].y) == [0.46, 0.35]
    assert list(fig.data[0].error_y.array) == pytest.approx([0.05, 0.05])


def test_difference_forest_draws_each_pair_with_its_interval_and_a_zero_line():
    table = pd.DataFrame({"pair": ["a − u", "pooled over 1 pairs"], "uncovered": [0.1, 0.1],
                          "uncovered low": [-0.02, 0.0], "uncovered high": [0.2, 0.2]})
    fig = charts.difference_forest(table, ["uncovered"])
    (trace,) = fig.data
    assert list(trace.y) == ["a − u", "pooled over 1 pairs"] and list(trace.x) == [0.1, 0.1]
    assert list(trace.error_x.arrayminus) == pytest.approx([0.12, 0.1])
    assert fig.layout.shapes[0].x0 == 0


# ---------------------------------------------------------------------------------------------------------------
# page


def open_page(store_path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["store_path"] = str(store_path)
    at.run()
    return at.switch_page(PAGE).run()


def test_page_on_an_empty_store_says_to_train_stage1_first(tmp_path):
    at = open_page(tmp_path / "empty.duckdb")
    assert not at.exception
    assert "No finished Stage I run yet" in at.info[0].value


def test_page_with_a_stage1_model_and_no_round_offers_the_form(tmp_path, started):
    at = open_page(build_store(tmp_path / "s.duckdb", with_round=False).path)
    assert not at.exception
    assert any("No selection round from this model yet" in i.value for i in at.info)
    at.slider(key="sel_gamma").set_value(3.0)
    at.text_input(key="sel_budget").set_value("5%")
    at.text_input(key="sel_pool").set_value(" data/pool/*.parquet ")
    at.text_input(key="sel_embedder").set_value("static:all-MiniLM-L6-v2")
    at.button(key="sel_start").click().run()
    args, name = started[0]
    assert name == "select" and args[:2] == ["select", "--train"]
    from salad_core.cli import build_parser

    parsed = build_parser().parse_args(args)  # the page's command line is the config it shows
    given = {f: getattr(parsed, f) for f in SelectConfig.__dataclass_fields__ if getattr(parsed, f) is not None}
    assert SelectConfig(**given) == SelectConfig(from_run=given["from_run"], gamma=3.0, budget="5%",
                                                 pool="data/pool/*.parquet", embedder="static:all-MiniLM-L6-v2")


def test_page_shows_a_round_its_allocation_and_the_stage_comparison(store):
    at = open_page(store.path)
    assert not at.exception
    values = {m.label: m.value for m in at.metric}
    assert values["clusters"] == "4" and values["filtered"] == "1"
    charts_shown = at.get("plotly_chart")
    assert len(charts_shown) >= 5  # preview, map, bars, allocation, comparison
    assert any("mini-stories" in str(row) for row in at.dataframe[-1].value.to_dict("records"))
    assert any("Active vs uniform at equal budget" in c.value for c in at.caption)  # one active round: no pair yet


def test_page_lists_every_round_of_the_lineage_and_starts_the_next_from_a_stage2_model(store, started):
    stage1, stage2 = store.runs("train").sort_values("created_at")["run_id"]
    second, again = add_second_round(store)
    at = open_page(store.path)
    assert not at.exception
    assert at.selectbox(key="sel_round").options[0].startswith("round 2 · active γ=5 · 5%")
    assert [o.split(": ")[-1] for o in at.selectbox(key="sel_model").options] == ["round 1", "round 2", "round 3"]
    gains = at.dataframe[-1].value.set_index("task")[f"Stage II · round 2 · active γ=5 · 5% ({again})"]
    assert gains["mini-stories"] == pytest.approx(0.41 - 0.18)  # each round's gain over Stage I, per task
    at.selectbox(key="sel_model").set_value(stage2).run()
    at.button(key="sel_start").click().run()
    args, _ = started[0]
    assert args[args.index("--from") + 1] == stage2


def test_page_pools_active_vs_uniform_only_among_stage2_runs_of_one_length(store, monkeypatch):
    def no_world(name):
        raise FileNotFoundError(name)

    monkeypatch.setattr("salad_core.world.load_world", no_world)  # the same domain groups with or without a world
    stage1 = store.runs("train").sort_values("created_at")["run_id"].iloc[0]
    active = store.runs("select")["run_id"].iloc[0]
    uniform = store.create_run("select", {"from_run": stage1, "gamma": 0.0, "strategy": "active", "budget": "20%",
                                          "budget_hours": 0.27}, parent_run=stage1)
    store.finish_run(uniform)
    items = [{"item_id": f"i{k}", "task": f"mini-{d}", "task_version": "1", "doc_id": str(k), "split": "test",
              "question": "q", "choices": ["a", "b"], "answer": 0, "domain": d}
             for k, d in enumerate(["stories"] * 4 + ["capitals"] * 4)]
    store.upsert_items(items)
    right = {(active, 160): 2, (uniform, 160): 2, (active, 480): 4, (uniform, 480): 1}  # stories items right
    for (round_id, steps), n_right in right.items():
        run = store.create_run("train", {"preset": "mini", "stage": 2, "from_run": stage1, "round_id": round_id,
                                         "max_steps": steps, "synthetic_prob": 0.5}, parent_run=round_id,
                               plan={"max_steps": steps, "decay_start": 1, "synthetic_prob": 0.5})
        store.finish_run(run)
        evaluation = store.create_run("eval", {"model_path": f"/data/runs/{run}/final"}, parent_run=run)
        store.add_metrics(evaluation, [{"task": "mini-stories", "metric": "speech_acc", "value": n_right / 4,
                                        "ci_low": 0.0, "ci_high": 1.0, "n": 4}])
        store.add_outputs(evaluation, [{"item_id": i["item_id"], "lane": "speech", "pred": 0, "correct_norm": ok,
                                        "correct": ok} for k, i in enumerate(items) for ok in [k >= 4 or k < n_right]])
        store.finish_run(evaluation)
    at = open_page(store.path)
    assert not at.exception
    assert at.selectbox(key="sel_steps").options == ["160", "480"] and at.selectbox(key="sel_steps").value == 480
    pairs = at.dataframe[-1].value
    assert len(pairs) == 2 and pairs["steps"].iloc[0] == 480 and pairs["all domains"].iloc[-1] == pytest.approx(3 / 8)
    at.selectbox(key="sel_steps").set_value(160).run()
    assert at.dataframe[-1].value["all domains"].iloc[-1] == pytest.approx(0.0)
