"""Stage II from the store: rounds, where their budget went, and what their Stage II runs gained per task.

Pure functions of store frames (`Store.runs`, `Store.selection_clusters`, `Store.selection_texts`, `Store.selection_domains`,
`Store.metrics`), shared by the Active selection page and `benchmarks/stage2_report.py`.
"""

from __future__ import annotations

import pandas as pd

from salad_core.compare import item_correctness
from salad_core.eval.metrics import Estimate, bootstrap_indices, mean_with_ci
from salad_core.eval.vocabulary import ALL_TASKS
from salad_core.runs import Lineage
from salad_core.select.allocation import target_distribution
from salad_core.store import Store


def final_speech_correct(store: Store, run_id: str) -> pd.DataFrame:
    """Per test item (index item_id) of a training run's final evaluation: its domain and speech correctness (0/1)."""
    return item_correctness(store, run_id, "speech")


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, domains: set[str], seed: int = 0) -> Estimate:
    """Mean of a's correctness minus b's (`final_speech_correct` frames) over their common items of `domains`, with
    a paired bootstrap interval (the same items resampled for both)."""
    return pooled_paired_difference([(a, b)], domains, seed)


def pooled_paired_difference(pairs: list[tuple[pd.DataFrame, pd.DataFrame]], domains: set[str],
                             seed: int = 0) -> Estimate:
    """The mean over several comparisons (e.g. active vs uniform at each of several budgets) of a's correctness minus
    b's, per item, over the items of `domains` that every frame has; the bootstrap resamples items, the same ones
    for every pair, so the interval counts both the items' spread and the comparisons' agreement on each item."""
    differences = []
    for a, b in pairs:
        a, b = (frame.loc[frame["domain"].isin(domains), "correct"] for frame in (a, b))
        differences.append(a - b)
    per_item = pd.concat(differences, axis=1, join="inner").mean(axis=1)
    return mean_with_ci(per_item.to_numpy(), bootstrap_indices(len(per_item), seed=seed))


def paired_speech_difference(store: Store, run_a: str, run_b: str, domains: set[str], seed: int = 0) -> Estimate:
    """Speech accuracy of training run `run_a`'s final model minus `run_b`'s over the test items of `domains`."""
    return paired_difference(final_speech_correct(store, run_a), final_speech_correct(store, run_b), domains, seed)


def round_label(config: dict) -> str:
    """"active γ=5 · 20%" / "random · 0.2 h": how pages and tables name a round."""
    kind = "random" if config.get("strategy") == "random" else f"active γ={config.get('gamma', 0):g}"
    if kind == "active γ=0":
        kind = "uniform (γ=0)"
    return f"{kind} · {config.get('budget')}"


def rounds_table(select_runs: pd.DataFrame, train_runs: pd.DataFrame) -> pd.DataFrame:
    """One row per selection round: its scoring model, the Stage I run its lineage starts from and its number in
    that lineage (1: scored by the Stage I model, 2: by a Stage II model trained on a round 1, ...), strategy, γ,
    budget, status, and the finished Stage II runs on it (runs.Lineage, over both frames)."""
    lineage = Lineage(pd.concat([select_runs, train_runs], ignore_index=True))
    rows = []
    for _, run in select_runs.iterrows():
        config = run["config"] if isinstance(run["config"], dict) else {}
        try:
            stage1_run = lineage.stage1(run["run_id"])
        except ValueError:  # its scoring model is not in these frames
            stage1_run = None
        stage2 = lineage.children(run["run_id"], kind="train", status="done")[::-1]  # oldest first
        rows.append({"round_id": run["run_id"], "label": round_label(config), "round": lineage.round_number(run["run_id"]),
                     "stage1_run": stage1_run, "from_run": lineage.parent.get(run["run_id"]),
                     "strategy": config.get("strategy"), "gamma": config.get("gamma"),
                     "budget_hours": config.get("budget_hours"), "seed": config.get("seed"), "status": run["status"],
                     "created_at": run["created_at"], "stage2_runs": ", ".join(stage2)})
    return pd.DataFrame(rows, columns=["round_id", "label", "round", "stage1_run", "from_run", "strategy", "gamma",
                                       "budget_hours", "seed", "status", "created_at", "stage2_runs"])


def equal_budget_pairs(rounds: pd.DataFrame, train_plans: pd.Series) -> list[dict]:
    """Active (γ > 0) and uniform (γ = 0) Stage II runs that differ only in the strategy: the same budget, selection
    seed, synthetic share (to two decimals; the default share is the selected hours', which both nearly equal) and
    Stage II length. `rounds` is a `rounds_table`; `train_plans` maps a training run id to its plan (the store's
    `runs.plan`: the share and steps it used). Oldest pair first."""
    found: dict[tuple, dict[str, str]] = {}
    for _, r in rounds.sort_values("created_at").iterrows():
        if r["strategy"] != "active" or r["status"] != "done":
            continue
        kind = "uniform" if r["gamma"] == 0 else "active"
        for run_id in filter(None, r["stage2_runs"].split(", ")):
            plan = train_plans[run_id] if isinstance(train_plans[run_id], dict) else {}
            share = round(float(plan.get("synthetic_prob") or 0.0), 2)
            key = (r["from_run"], round(float(r["budget_hours"]), 4), r["seed"], share, plan.get("max_steps"))
            found.setdefault(key, {}).setdefault(kind, run_id)
    return [{"budget_hours": key[1], "seed": key[2], "synthetic_prob": key[3], "steps": key[4], **runs}
            for key, runs in found.items() if len(runs) == 2]


def pairs_by_length(pairs: list[dict]) -> dict[int | None, list[dict]]:
    """`equal_budget_pairs` grouped by Stage II length, shortest first: pairs are pooled only within one length."""
    groups: dict[int | None, list[dict]] = {}
    for p in sorted(pairs, key=lambda p: p["steps"] or 0):
        groups.setdefault(p["steps"], []).append(p)
    return groups


def equal_budget_table(pairs: list[dict], correct: dict[str, pd.DataFrame], groups: dict[str, set[str]],
                       seed: int = 0) -> pd.DataFrame:
    """Active − uniform speech accuracy per `equal_budget_pairs` pair and pooled over them (the last row), per group
    of domains: columns `<group>`, `<group> low`, `<group> high` (95 % paired bootstrap). `correct` maps each run of
    the pairs to its `final_speech_correct` frame."""
    rows, frames = [], []
    for p in pairs:
        a, b = correct[p["active"]], correct[p["uniform"]]
        frames.append((a, b))
        rows.append({"pair": f"{p['active']} − {p['uniform']}", "budget_hours": p["budget_hours"], "seed": p["seed"],
                     "synthetic_prob": p["synthetic_prob"], "steps": p.get("steps"),
                     **_estimate_columns({g: paired_difference(a, b, d, seed) for g, d in groups.items()})})
    if frames:
        rows.append({"pair": f"pooled over {len(frames)} pairs",
                     **_estimate_columns({g: pooled_paired_difference(frames, d, seed) for g, d in groups.items()})})
    return pd.DataFrame(rows)


def _estimate_columns(estimates: dict[str, Estimate]) -> dict[str, float]:
    out = {}
    for group, e in estimates.items():
        out |= {group: e.value, f"{group} low": e.ci_low, f"{group} high": e.ci_high}
    return out


def domain_allocation(clusters: pd.DataFrame, domains: pd.DataFrame, selected: pd.DataFrame) -> pd.DataFrame:
    """Per domain of the pool: its share of the pool (P_web), of the target distribution (each cluster's P_target
    split over its documents' domains, `Store.selection_domains`) and of the selected audio (seconds)."""
    if domains.empty:
        return pd.DataFrame(columns=["domain", "p_web", "p_target", "selected_share", "selected_s"])
    sizes = domains.set_index(["cluster", "domain"])["size"].astype(float)
    share_in_cluster = sizes / sizes.groupby(level=0).transform("sum")
    p_target = clusters.set_index("cluster")["p_target"]
    by_domain = share_in_cluster * p_target.reindex(share_in_cluster.index.get_level_values(0)).to_numpy()
    table = pd.DataFrame({
        "p_web": sizes.groupby(level=1).sum() / sizes.sum(),
        "p_target": by_domain.groupby(level=1).sum(),
        "selected_s": selected.groupby("domain")["seconds"].sum() if not selected.empty else pd.Series(dtype=float),
    }).fillna(0.0)
    total = table["selected_s"].sum()
    table["selected_share"] = table["selected_s"] / total if total else 0.0
    return table.rename_axis("domain").reset_index()[["domain", "p_web", "p_target", "selected_share", "selected_s"]]


def preview_allocation(clusters: pd.DataFrame, gamma: float, score: str = "m",
                       cer_max: float | None = None) -> pd.DataFrame:
    """The clusters' P_target at another γ (and CER threshold), from a round's stored scores: what a new round
    from the same model would aim for, shown before anything runs."""
    filtered = clusters["filtered"].to_numpy(bool) if cer_max is None else ~(clusters["cer"].to_numpy(float) <= cer_max)
    m = clusters["m" if score == "m" else "m_distill"].to_numpy(float)
    out = clusters.copy()
    out["filtered"] = filtered
    out["p_target"] = target_distribution(clusters["p_web"].to_numpy(float), m, gamma, filtered)
    return out


def uncovered_share(allocation: pd.DataFrame, covered: set[str], column: str = "selected_share") -> float:
    """The share (of `column`) that went to domains missing from the natural speech."""
    return float(allocation.loc[~allocation["domain"].isin(covered), column].sum())


def task_comparison(finals: dict[str, pd.DataFrame], metric: str = "speech_acc") -> pd.DataFrame:
    """Long frame (label, task, value, ci_low, ci_high) of one metric from several runs' final evaluations."""
    rows = []
    for label, frame in finals.items():
        part = frame[(frame["metric"] == metric) & (frame["task"] != ALL_TASKS)]
        for _, r in part.iterrows():
            rows.append({"label": label, "task": r["task"], "value": r["value"], "ci_low": r["ci_low"],
                         "ci_high": r["ci_high"]})
    return pd.DataFrame(rows, columns=["label", "task", "value", "ci_low", "ci_high"])


def gains(comparison: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per task, each label's value minus the baseline label's (points of accuracy gained)."""
    wide = comparison.pivot_table(index="task", columns="label", values="value")
    if baseline not in wide:
        return pd.DataFrame()
    return wide.drop(columns=baseline).sub(wide[baseline], axis=0).reset_index()
