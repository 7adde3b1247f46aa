"""Tables and charts of a speech-source check (`salad speech check --json`, salad_core/train/speech_check.py): pure
functions from its result to frames and Plotly figures, for the Training page.

The result holds one entry per source (`spec`, `documents`, `utterances`, `hours` kept, `hours_dropped`, `dropped`:
reason -> count, `bad_rows`, the leak audit's `facts_stated` and `documents_left_out`, ...). Reasons are the run's
own (`train.windows.drop_reason`), so what a check shows is what a run's notes will say.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

KEPT_COLOR, DROPPED_COLOR = "#4C78A8", "#E45756"
BAD_ROW = "row could not be read"  # the drop chart's bar for rows that never became an utterance
SOURCE_COLUMNS = {"spec": "source", "kind": "kind", "documents": "documents", "utterances": "utterances",
                  "hours": "hours kept", "hours_dropped": "hours dropped", "dropped_total": "utterances dropped",
                  "bad_rows": "rows not read", "documents_with_nothing_left": "documents with nothing left",
                  "facts_stated": "eval facts stated", "documents_left_out": "documents left out (leak audit)",
                  "location": "location", "digest": "digest"}


def source_table(result: dict) -> pd.DataFrame:
    """One row per source: what training would read of it, what it would drop, and the leak audit's counts."""
    rows = [{**found, "dropped_total": sum(found["dropped"].values())} for found in result.get("sources", [])]
    if not rows:
        return pd.DataFrame(columns=list(SOURCE_COLUMNS.values()))
    return pd.DataFrame(rows)[list(SOURCE_COLUMNS)].rename(columns=SOURCE_COLUMNS)


def problem_table(result: dict) -> pd.DataFrame:
    """The problems the check quotes verbatim (the first few per source and kind): rows that could not be read, and
    utterances dropped, each with its reason."""
    rows = []
    for found in result.get("sources", []):
        rows += [{"source": found["spec"], "problem": BAD_ROW, "message": m} for m in found["bad_row_examples"]]
        rows += [{"source": found["spec"], "problem": "utterance dropped", "message": m}
                 for m in found["drop_examples"]]
    return pd.DataFrame(rows, columns=["source", "problem", "message"])


def drop_frame(result: dict) -> pd.DataFrame:
    """Long form of what is left out: source, reason (the run's words, or a row that could not be read), count."""
    rows = []
    for found in result.get("sources", []):
        counts = {**found["dropped"], **({BAD_ROW: found["bad_rows"]} if found["bad_rows"] else {})}
        rows += [{"source": found["spec"], "reason": why, "count": n} for why, n in counts.items() if n]
    return pd.DataFrame(rows, columns=["source", "reason", "count"])


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, legend: str) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, legend_title_text=legend,
                      showlegend=True, margin={"t": 50}, barmode="stack")
    return fig


def hours_bars(result: dict) -> go.Figure:
    """Hours of audio per source, kept and dropped, stacked."""
    found = result.get("sources", [])
    specs = [f["spec"] for f in found]
    fig = go.Figure([go.Bar(name="kept", x=specs, y=[f["hours"] for f in found], marker_color=KEPT_COLOR),
                     go.Bar(name="dropped", x=specs, y=[f["hours_dropped"] for f in found],
                            marker_color=DROPPED_COLOR)])
    return _layout(fig, "Audio each source gives training", "source", "audio (hours)", "audio")


def drop_bars(result: dict) -> go.Figure:
    """What is left out, by reason: a bar per reason, stacked by source (utterances; the leak audit's reason counts
    documents, and a row that could not be read counts rows)."""
    frame = drop_frame(result)
    reasons = sorted(frame["reason"].unique())
    traces = []
    for spec, rows in frame.groupby("source", sort=False):
        counts = rows.set_index("reason")["count"]
        traces.append(go.Bar(name=spec, x=reasons, y=[int(counts.get(r, 0)) for r in reasons]))
    return _layout(go.Figure(traces), "Left out, and why", "reason", "count (utterances; documents, rows where said)",
                   "source")
