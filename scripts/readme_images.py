"""The README's pictures, from a store that the mini pipeline's real commands made.

    python scripts/readme_images.py                  # what is missing in data/readme/, then docs/images/*.png
    python scripts/readme_images.py --data DIR       # another data folder (its store: DIR/salad.duckdb)

The commands a user types, each skipped when the folder's store already holds its finished run:
    salad world build --corpus mini
    salad train --preset mini --tag readme          Stage I, with its final evaluation
    salad eval --model <that run's final model> --voice world --tasks <the mini world's six tasks>
                                                    every lane (the ASR cascade and the no-audio floor too)
Then the dashboard serves that store on a localhost port and headless Chromium takes the pictures: the Gap page of
the evaluation (one task's items opened), and the explorer with the model's representations computed and mapped.
About an hour on 2 CPU cores from an empty cache (the world build is most of it), minutes once the runs exist.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from salad_core.jobs import cli_command  # noqa: E402
from salad_core.paths import REPO_ROOT, cache_dir  # noqa: E402
from salad_core.store import Store  # noqa: E402
from salad_core.world.domains import domain_defs  # noqa: E402

TAG = "readme"
IMAGES = REPO_ROOT / "docs" / "images"
SHOWN_TASK = "mini-capitals"  # the task whose items the Gap page's picture opens
PICTURE_HEIGHT = 2800  # pixels: the page's head, its charts and the opened item


def salad(args: list[str], env: dict[str, str], db: Path) -> dict:
    """One `salad` command as a user runs it (its progress on this terminal); its `--json` result."""
    done = subprocess.run(cli_command([*args, "--json"], str(db)), env=env, stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"salad {' '.join(args)} failed with exit code {done.returncode} (its log is above)")
    return json.loads(done.stdout)


def finished(store: Store, kind: str, match) -> str | None:
    """The newest finished run of `kind` whose config `match` accepts."""
    runs = store.runs(kind)
    chosen = [r for r, status, config in zip(runs["run_id"], runs["status"], runs["config"])
              if status == "done" and isinstance(config, dict) and match(config)]
    return chosen[0] if chosen else None


def make_runs(data: Path, env: dict[str, str]) -> tuple[str, str]:
    """(the Stage I run, its evaluation with every lane), made now where the store lacks them."""
    db = data / "salad.duckdb"
    store = Store(db)
    salad(["world", "build", "--corpus", "mini"], env, db)  # cached: seconds once built
    train = finished(store, "train", lambda c: c.get("tag") == TAG and c.get("preset") == "mini")
    if train is None:
        train = salad(["train", "--preset", "mini", "--tag", TAG], env, db)["run_id"]
    model = str(data / "runs" / train / "final")
    tasks = [d.domain.task for d in domain_defs("mini")]
    evaluated = finished(store, "eval", lambda c: c.get("model_path") == model and "cascade" in c.get("lanes", []))
    if evaluated is None:
        evaluated = salad(["eval", "--preset", "mini", "--model", model, "--voice", "world", "--tasks", ",".join(tasks)],
                          env, db)["run_id"]
    return train, evaluated


def take_pictures(env: dict[str, str], data: Path, train: str, evaluated: str) -> list[Path]:
    from dashboard import browser

    if browser.chromium_path() is None:
        raise SystemExit("Debian's chromium is not installed. Fix: bash scripts/setup.sh installs it.")
    gap, explorer = IMAGES / "gap.png", IMAGES / "explorer.png"
    with browser.serve(env, data / "readme-streamlit.log") as url, browser.chromium() as chromium:
        page = browser.visit(chromium, url)
        browser.select(page, "Evaluation run", evaluated)
        browser.select(page, "Task", SHOWN_TASK)
        check(page, "Gap page")
        browser.screenshot(page, gap, PICTURE_HEIGHT)
        page = browser.visit(chromium, f"{url}/explorer")
        browser.select(page, "Model", train)
        page.get_by_role("button", name="Compute representations").click()
        browser.charts_drawn(page, 3, browser.JOB_MS)  # the map, the per-layer metrics, the opened item's token KL
        check(page, "explorer")
        browser.screenshot(page, explorer, PICTURE_HEIGHT)
    return [gap, explorer]


def check(page, name: str) -> None:
    from dashboard import browser

    errors = browser.shown_errors(page)
    if errors:
        raise SystemExit(f"the {name} shows an error, so no picture was taken: {errors[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "readme",
                        help="the data folder of the runs (its store: DATA/salad.duckdb)")
    args = parser.parse_args()
    data = args.data.resolve()
    data.mkdir(parents=True, exist_ok=True)
    # the runs and their store in DATA; the converted models, the speech and the built world in the usual cache
    env = {**os.environ, "SALAD_DATA": str(data), "SALAD_STORE": str(data / "salad.duckdb"), "SALAD_NO_AUTOSTART": "1",
           "SALAD_CACHE": str(cache_dir("").resolve())}
    train, evaluated = make_runs(data, env)
    for path in take_pictures(env, data, train, evaluated):
        print(f"wrote {path.relative_to(REPO_ROOT)} (Stage I run {train}, evaluation {evaluated}, store {data})")


if __name__ == "__main__":
    main()
