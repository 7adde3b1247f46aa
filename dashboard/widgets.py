"""Streamlit output shared by the pages: every chart with a PNG button and its data as CSV, every table with a CSV
download, and the empty state that names the next step.

The pure parts (the PNG config, a figure's drawn data) are in `dashboard.charts`; this module only places them.
`where` is the container to draw in (a column, an expander…), the page itself when None. Download buttons do not
rerun the page (`on_click="ignore"`), so a download never restarts a fragment or resets a selection.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard import charts


def csv_button(frame: pd.DataFrame, file_name: str, label: str, key: str, where: DeltaGenerator | None = None) -> None:
    (where or st).download_button(label, frame.to_csv(index=False), file_name=f"{file_name}.csv", mime="text/csv",
                                  key=key, on_click="ignore", type="tertiary", icon=":material/download:")


def chart(fig: go.Figure, key: str, *, name: str | None = None, data: pd.DataFrame | None = None,
          where: DeltaGenerator | None = None, **kwargs: Any) -> Any:
    """A Plotly chart whose camera button saves `name`.png, with a CSV of `data` (default: what it draws) below.

    Returns what `st.plotly_chart` returns (the selection event when `on_select` is passed)."""
    name = name or key
    event = (where or st).plotly_chart(fig, key=key, config=charts.png_config(name), **kwargs)
    csv_button(charts.figure_data(fig) if data is None else data, name, "Chart data (CSV)", f"{key}_csv", where)
    return event


def table(frame: pd.DataFrame, key: str, *, name: str | None = None, where: DeltaGenerator | None = None,
          **kwargs: Any) -> None:
    """A table (no index) with a CSV download of exactly its rows and columns below it."""
    (where or st).dataframe(frame, hide_index=True, key=key, **kwargs)
    csv_button(frame, name or key, "Table (CSV)", f"{key}_csv", where)


def next_step(message: str, command: str | None = None, where: DeltaGenerator | None = None) -> None:
    """An empty state: what is missing and what to do, with the exact shell command (copyable) when there is one."""
    target = where or st
    target.info(message, icon=":material/arrow_forward:")
    if command:
        target.code(command, language="bash")
