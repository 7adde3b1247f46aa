"""A background job on a page: its progress bar with ETA, its command and logs, and a stop button."""

from __future__ import annotations

import streamlit as st

from dashboard import data, views
from salad_core import jobs


def progress_bar(progress: dict | None) -> None:
    progress = progress or {}
    st.progress(min(max(float(progress.get("fraction") or 0.0), 0.0), 1.0), text=views.progress_label(progress))


def show_job(job: dict, key_prefix: str) -> None:
    """Progress bar, ETA, command and a stop button for a running job; the button's key is `<prefix>_stop_<id>`."""
    progress_bar(job["progress"])
    left, right = st.columns([4, 1])
    left.caption(f"Job `{job['job_id']}`: `salad {' '.join(job['args'])}` · logs in `{jobs.jobs_dir() / job['job_id']}`")
    if right.button("Stop", key=f"{key_prefix}_stop_{job['job_id']}"):
        jobs.stop_job(job["job_id"])
        data.clear()
        st.rerun(scope="app")
