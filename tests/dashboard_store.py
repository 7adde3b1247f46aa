"""The dashboard as a user meets it: its pages, and stores that fill them or leave them empty on purpose.

`build_full_store` assembles, in one file, the hand-built stores of other tests (nothing is trained, evaluated or
computed here): a finished Stage I model with a selection round and a Stage II run evaluated on it
(tests/test_selection_page.py), the α sweep of Stage I training runs (tests/test_analysis.py), and the fixture
evaluation run with its audio (tests/conftest.py). The other builders leave one thing out each: the empty states.
"""

from __future__ import annotations

from pathlib import Path

from salad_core.store import Store
from tests.conftest import build_fixture_store
from tests.test_analysis import build_training_store
from tests.test_selection_page import build_store as build_selection_store

# page file (relative to dashboard/app.py, for AppTest.switch_page), URL path, title
PAGES = (
    ("../pages/gap.py", "", "Gap per task"),
    ("../pages/dynamics.py", "dynamics", "Forgetting & dynamics"),
    ("../pages/explorer.py", "explorer", "Misalignment explorer"),
    ("../pages/training.py", "training", "Training"),
    ("../pages/selection.py", "selection", "Active selection"),
    ("../pages/demo.py", "demo", "Side-by-side demo"),
)


def build_full_store(root: Path) -> Store:
    """Every page has something to show; the newest evaluation run is the fixture run (12 items, four lanes)."""
    path = root / "salad.duckdb"
    build_selection_store(path)
    build_training_store(path)  # after the selection store's runs: its newest run opens the Training page
    return build_fixture_store(path, root / "audio")


def build_runs_without_results(root: Path) -> Store:
    """A model whose runs hold nothing yet: an evaluation that failed before any result, a training run that
    stopped before its first step, and a finished Stage I run that no selection round started from."""
    store = Store(root / "salad.duckdb")
    model = {"model_id": "mini-a1", "name": "mini world LM + adapter"}
    failed = store.create_run("eval", {"limit": 6}, model=model)
    store.finish_run(failed, "failed", error="RuntimeError: the TTS engine is missing")
    stopped = store.create_run("train", {"preset": "mini", "alpha": 1.0, "stage": 1}, model=model)
    store.finish_run(stopped, "failed", error="KeyboardInterrupt")
    stage1 = store.create_run("train", {"preset": "mini", "alpha": 1.0, "stage": 1}, model=model)
    store.finish_run(stage1)
    return store


def build_round_without_stage2(root: Path) -> Store:
    """A Stage I model with a finished selection round whose Stage II training failed."""
    store = build_selection_store(root / "salad.duckdb")
    runs = store.runs("train")
    stage2 = [r for r, c in zip(runs["run_id"], runs["config"]) if c.get("stage") == 2]
    store.finish_run(stage2[0], "failed", error="RuntimeError: out of memory")
    return store


def fixture_run(store: Store) -> str:
    """The full store's evaluation run with items and audio (its newest run; the Gap page opens on a trained
    model's evaluation instead)."""
    return store.runs("eval")["run_id"].iloc[0]


def round_model(store: Store) -> str:
    """The Stage I run that the full store's selection round started from (the Active selection page opens on the
    newest Stage I run, one of the sweep's)."""
    return store.runs("select")["config"].iloc[0]["from_run"]
