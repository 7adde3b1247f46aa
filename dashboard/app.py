"""The salad dashboard entrypoint: page config, the shared sidebar (store, run), navigation. Router and frame only.

Run from the repository root:  streamlit run dashboard/app.py
The store is `$SALAD_STORE` if set, else `$SALAD_DATA/salad.duckdb` (default `data/salad.duckdb`); the sidebar can
point at another file. Cross-page state: `st.session_state["store_path"]` and `st.session_state["run_id"]`.
Pages live in the repository-root `pages/` folder (a `dashboard/pages/` folder would switch Streamlit into its legacy
multipage mode).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `streamlit run` puts only dashboard/ on the path
    sys.path.insert(0, str(REPO_ROOT))

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402
from streamlit.navigation.page import StreamlitPage  # noqa: E402

import salad_core.world  # noqa: E402, F401  (registers the mini worlds' tasks, LLM names and probe documents)
from dashboard import data, first_launch, views  # noqa: E402
from salad_core.store import StoreError  # noqa: E402

PAGES = REPO_ROOT / "pages"
GAP_TITLE = "Gap per task"
RESULT_PAGES = (GAP_TITLE,)  # pages that show a run's results: on an empty store, first launch shows instead


def run_label(run: pd.Series) -> str:
    return f"{run['run_id']} · {views.model_label(run)} · {run['status']}"


def sidebar() -> pd.DataFrame:
    """Store path and run picker; returns the store's evaluation runs (newest first)."""
    st.session_state.setdefault("store_path", data.default_store_path())
    path = st.sidebar.text_input("Results store (DuckDB file)", key="store_path")
    try:
        runs = data.runs(path, "eval")
    except StoreError as err:
        st.sidebar.error(str(err))
        runs = pd.DataFrame(columns=["run_id", "status"])
    if runs.empty:
        st.session_state["run_id"] = None
        return runs
    ids = runs["run_id"].tolist()
    current = st.session_state.get("run_id")
    if current not in ids:
        current = first_launch.default_run(runs)
    labels = {run["run_id"]: run_label(run) for _, run in runs.iterrows()}
    st.session_state["run_id"] = st.sidebar.selectbox("Evaluation run", ids, index=ids.index(current),
                                                      format_func=labels.get, key="sidebar_run")
    return runs


def navigation() -> StreamlitPage:
    sections = {"Diagnose": [st.Page(PAGES / "gap.py", title=GAP_TITLE, icon=":material/bar_chart:",
                                     default=True),
                             st.Page(PAGES / "dynamics.py", title="Forgetting & dynamics",
                                     icon=":material/show_chart:"),
                             st.Page(PAGES / "explorer.py", title="Misalignment explorer",
                                     icon=":material/scatter_plot:")],
                "Fix": [st.Page(PAGES / "training.py", title="Training", icon=":material/model_training:"),
                        st.Page(PAGES / "selection.py", title="Active selection", icon=":material/target:")]}
    if (PAGES / "demo.py").exists():
        sections["Demo"] = [st.Page(PAGES / "demo.py", title="Side-by-side demo", icon=":material/compare:")]
    return st.navigation(sections)


def main() -> None:
    st.set_page_config(page_title="salad · text-speech gap", page_icon=":material/graphic_eq:", layout="wide")
    runs = sidebar()
    page = navigation()
    if runs.empty and page.title in RESULT_PAGES:
        first_launch.render(st.session_state["store_path"])
        return
    job_id = first_launch.running_job() if page.title in RESULT_PAGES else None
    if job_id:
        st.caption("The first evaluation is still running; its tasks appear here as they finish.")
        first_launch.watch(job_id)
    page.run()


main()
