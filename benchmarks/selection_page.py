"""The Active selection page on rounds over pools of any size: what the page reads from the store for one round (its
clusters, their domains, the texts it keeps: map sample, probes, selection) and the three charts it draws from them,
serialised as Streamlit sends them. A round keeps rows per cluster, per probe and per selected text, not per pool
document, so a round over millions of documents should draw as quickly as one over the world's few thousand.

    python benchmarks/selection_page.py --db data/paths.duckdb select-A select-B

Each round is read and drawn `--repeat` times in this process (the first run pays the imports); the median is shown.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the dashboard package of this checkout

from salad_core.store import Store


def draw_round(store: Store, round_id: str) -> tuple[float, float, dict]:
    """(seconds reading, seconds drawing, row counts) for one page view of the round."""
    from dashboard import selection_charts
    from salad_core.select import report

    start = time.perf_counter()
    clusters = store.selection_clusters(round_id)
    texts = store.selection_texts(round_id)
    domains = store.selection_domains(round_id)
    read = time.perf_counter() - start
    members, selected = texts[texts["role"] == "member"], texts[texts["role"] == "selected"]
    allocation = report.domain_allocation(clusters, domains, selected)
    figures = [selection_charts.cluster_map(members, clusters, selected), selection_charts.misalignment_bars(clusters),
               selection_charts.allocation_bars(allocation, covered=set())]
    for figure in figures:
        figure.to_json()
    rows = {"pool": int(clusters["size"].sum()), "clusters": len(clusters), "domain rows": len(domains),
            "map": len(members), "probes": int((texts["role"] == "probe").sum()), "selected": len(selected)}
    return read, time.perf_counter() - start - read, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rounds", nargs="+", help="selection round ids")
    parser.add_argument("--db", default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    store = Store(args.db)
    print("| round | pool documents | clusters | domain rows | map texts | probes | selected | read ms | draw ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for round_id in args.rounds:
        runs = [draw_round(store, round_id) for _ in range(args.repeat)]
        rows = runs[0][2]
        read, draw = (statistics.median(r[i] for r in runs) * 1000 for i in (0, 1))
        print(f"| {round_id} | {rows['pool']:,} | {rows['clusters']} | {rows['domain rows']} | {rows['map']} | "
              f"{rows['probes']} | {rows['selected']} | {read:.0f} | {draw:.0f} |")


if __name__ == "__main__":
    main()
